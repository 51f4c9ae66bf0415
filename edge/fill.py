"""A fill: one upstream GET of a blob, teed into a temp file that every waiting client reads as it grows.

Contract:

* :meth:`Fill.run` runs in the application's nursery, not in a request: the fill completes (and is cached) even
  when every client that asked for it has gone. It never raises except ``trio.Cancelled``.
* Clients read the temp file through :meth:`Fill.stream` while it grows. The last byte is held back until the
  digest and size are verified; on a mismatch the stream raises :class:`FillFailed` (the connection is then
  dropped), so no client ever receives a complete successful response with wrong bytes.
* Only a verified file is committed to the cache (adopted by rename) and only then is ``repo`` linked.
* Each client :meth:`attach`-es before waiting and :meth:`detach`-es when done; the temp file's descriptor
  stays open until the fill and all attached clients are done, so readers keep working after the rename,
  after an eviction, and when the verified blob was too large to cache.
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

import trio

from edge.blobcache import DiskBlobCache
from edge.fetch import OversizedBody
from edge.index import SqliteEdgeIndex
from edge.metrics import EdgeMetrics
from edge.upstream import Upstream, UpstreamUnavailable, relayed_error
from registry.oci import errors as e
from registry.oci.digest import Digest, Hasher, new_hasher

log = logging.getLogger("edge.fill")

READ_CHUNK = 1024 * 1024  # what a client's stream reads from the temp file at a time


class FillState(enum.Enum):
    STARTING = "starting"  # waiting for the upstream's answer
    RUNNING = "running"  # headers known, bytes arriving
    VERIFIED = "verified"  # every byte is in the temp file and matches the digest
    FAILED = "failed"


class FillFailed(Exception):
    """The fill ended without verified content after a client's response had started."""


def _open_temp(path: Path) -> tuple[int, int]:
    """A new temp file: (write descriptor, read descriptor)."""
    write_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return write_fd, os.open(path, os.O_RDONLY)


class Fill:
    """The fill of ``digest`` through repository ``repo``."""

    def __init__(
        self,
        repo: str,
        digest: Digest,
        *,
        cache: DiskBlobCache,
        index: SqliteEdgeIndex,
        upstream: Upstream,
        metrics: EdgeMetrics,
        clock: Callable[[], float],
        on_finish: Callable[[Fill], None],
    ) -> None:
        self.repo = repo
        self.digest = digest
        self.state = FillState.STARTING
        self.size: int | None = None
        self.error: e.RegistryError | None = None  # why the fill failed before the headers (404, 503, ...)
        self.committed = False
        self.ready = trio.Event()  # state left STARTING: size or error known
        self.done = trio.Event()  # VERIFIED and committed (or not) or FAILED
        self.written = 0
        self._progress = trio.Event()
        self._cache, self._index, self._upstream, self._metrics = cache, index, upstream, metrics
        self._clock = clock
        self._on_finish = on_finish
        self._path: Path | None = None
        self._read_fd: int | None = None
        self._holders = 1  # the fill itself

    # -- readers ---------------------------------------------------------------------------------------------

    def attach(self) -> None:
        """Keep the temp file readable for one more client (call in the same step that found the fill)."""
        self._holders += 1

    def detach(self) -> None:
        self._holders -= 1
        if self._holders == 0 and self._read_fd is not None:
            os.close(self._read_fd)
            self._read_fd = None

    def readable(self) -> int:
        """How many bytes from the start a client may be sent now: all once verified, else all but the last."""
        if self.state is FillState.VERIFIED:
            return self.written
        if self.size is None:
            return 0
        return min(self.written, self.size - 1)

    async def stream(self, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """Bytes ``start..end`` (inclusive) as they become readable. The caller attached and detaches.

        Raises:
            FillFailed: the fill failed (upstream error, size or digest mismatch) before ``end`` was readable.
        """
        while start <= end:
            progress = self._progress
            if self.state is FillState.FAILED:
                raise FillFailed(f"fill of {self.digest} failed")
            limit = min(self.readable(), end + 1)
            if start < limit:
                fd = self._read_fd
                assert fd is not None
                data = await trio.to_thread.run_sync(os.pread, fd, min(READ_CHUNK, limit - start), start)
                if not data:
                    raise FillFailed(f"temp file of {self.digest} is shorter than reported")
                start += len(data)
                yield data
            else:
                await progress.wait()

    def _notify(self) -> None:
        self._progress.set()
        self._progress = trio.Event()

    # -- the fill --------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Fetch, tee, verify, commit. Never raises (except ``trio.Cancelled``); the outcome is in ``state``."""
        reserved = 0
        write_fd: int | None = None
        try:
            path = f"/v2/{self.repo}/blobs/{self.digest}"
            async with self._upstream.fetch(path, headers={"Accept-Encoding": "identity"}) as body:
                if body.status_code != 200:
                    self.error = relayed_error(body.status_code, await body.read_error(), e.BLOB_UNKNOWN)
                    return
                length = body.headers.get("content-length")
                self.size = int(length) if length and length.isdigit() else None
                if self.size is not None and self._cache.reserve(self.size):
                    reserved = self.size
                    self._metrics.evictions += await self._cache.cull()
                self._path = self._cache.temp_path()
                fds = await trio.to_thread.run_sync(_open_temp, self._path)
                write_fd, self._read_fd = fds
                self.state = FillState.RUNNING
                self.ready.set()
                hasher = new_hasher(self.digest.algorithm)
                self._advance(await body.copy_into(fds[0], hasher, self.size, self._advance))
            await self._verify(hasher)
            self._notify()
            if reserved:
                await trio.to_thread.run_sync(os.fsync, fds[0])
                self._metrics.evictions += await self._cache.commit(self.digest, self._path, self.written)
                self.committed = True
                self._metrics.fills += 1
            await self._index.link(self.repo, self.digest, self._clock())
        except UpstreamUnavailable as exc:
            log.warning("fill of %s from %s failed: %s", self.digest, self.repo, exc)
            self.error = exc
        except (FillFailed, OversizedBody) as exc:
            log.warning("fill of %s from %s failed: %s", self.digest, self.repo, exc)
        except Exception:
            log.exception("fill of %s from %s failed", self.digest, self.repo)
            self.error = e.RegistryError(e.UNKNOWN)
        finally:
            if self.state is not FillState.VERIFIED:
                self.state = FillState.FAILED
                self._metrics.fill_failures += 1
            if reserved:
                self._cache.release(reserved)
            if write_fd is not None:
                os.close(write_fd)
            if self._path is not None and not self.committed:
                self._path.unlink(missing_ok=True)
            self._on_finish(self)
            self.ready.set()
            self.done.set()
            self._notify()
            self.detach()

    def _advance(self, total: int) -> None:
        """``total`` bytes are written (called on the event loop by the fetch thread's progress reports)."""
        if total > self.written:
            self._metrics.upstream_bytes += total - self.written
            self.written = total
            self._notify()

    async def _verify(self, hasher: Hasher) -> None:
        if self.size is not None and self.written != self.size:
            raise FillFailed(f"upstream sent {self.written} of {self.size} bytes of {self.digest}")
        actual = hasher.hexdigest()
        if actual != self.digest.encoded:
            self._metrics.digest_mismatches += 1
            raise FillFailed(
                f"digest mismatch for {self.digest} from {self.repo}: got {self.digest.algorithm}:{actual}"
            )
        self.size = self.written
        self.state = FillState.VERIFIED
