"""Blob pulls through the edge: cache hits, single-flight fills, and repository scoping.

Scoping rule: a cached blob is served for a repository only after the upstream confirmed that the repository
links it, by a verified fill through that repository or a ``HEAD`` of the blob in that repository. Knowing a
digest (from another repository's pull) never opens it elsewhere: a request for an unconfirmed repository costs
one upstream ``HEAD`` (404 there → 404 here; upstream down → 503), and never serves bytes on trust.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

import trio

from edge.blobcache import CachedBlob, DiskBlobCache
from edge.fill import Fill, FillState
from edge.index import SqliteEdgeIndex
from edge.metrics import EdgeMetrics
from edge.singleflight import SingleFlight
from edge.upstream import Upstream, relayed_error
from registry.oci import errors as e
from registry.oci.digest import Digest
from registry.oci.wire import ByteRange, parse_range

CORRUPT_UPSTREAM = e.ErrorCode("UNAVAILABLE", "the upstream sent content that does not match its digest", 503)
MAX_ATTEMPTS = 4


@dataclass
class BlobBody:
    """What to send for a blob GET: the whole blob or ``byte_range`` of it. ``close`` must be called once,
    whether or not ``stream`` was used."""

    size: int
    byte_range: ByteRange | None
    stream: Callable[[], AsyncGenerator[bytes, None]]
    close: Callable[[], None]

    @property
    def length(self) -> int:
        return self.byte_range.size if self.byte_range is not None else self.size


def _span(byte_range: ByteRange | None, size: int) -> tuple[int, int]:
    return (byte_range.start, byte_range.end) if byte_range is not None else (0, size - 1)


class EdgeBlobs:
    """Blob GET/HEAD for the edge. Fills run in ``nursery`` (the application's), not in requests."""

    def __init__(
        self,
        *,
        cache: DiskBlobCache,
        index: SqliteEdgeIndex,
        upstream: Upstream,
        metrics: EdgeMetrics,
        nursery: trio.Nursery,
        clock: Callable[[], float],
    ) -> None:
        self.cache, self.index, self.upstream, self.metrics = cache, index, upstream, metrics
        self.nursery = nursery
        self.clock = clock
        self.flights: SingleFlight[Digest, Fill] = SingleFlight()

    async def confirm(self, repo: str, digest: Digest) -> int:
        """Ask the upstream whether ``repo`` links ``digest`` (HEAD); remember a yes. Returns the size.

        Raises:
            RegistryError: the upstream's answer (404 ``BLOB_UNKNOWN``...), or 503 when it is unavailable.
        """
        reply = await self.upstream.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        if reply.status != 200:
            raise relayed_error(reply.status, reply.content, e.BLOB_UNKNOWN)
        await self.index.link(repo, digest, self.clock())
        length = reply.headers.get("content-length", "")
        return int(length) if length.isdigit() else 0

    async def head(self, repo: str, digest: Digest) -> int:
        """The size of ``digest`` in ``repo``: from the cache when linked, else from the upstream."""
        if await self.index.is_linked(repo, digest):
            blob = await self.cache.open(digest)
            if blob is not None:
                blob.close()
                return blob.size
        return await self.confirm(repo, digest)

    async def get(self, repo: str, digest: Digest, range_header: str | None) -> BlobBody:
        """The blob ``digest`` of ``repo`` (``range_header``: a client's Range), from the cache or a fill.

        Raises:
            RegistryError: 404 from the upstream, 416 for a bad range, 503 when the upstream is unavailable
                (or sent corrupt content) and the blob is not cached for ``repo``.
        """
        linked = await self.index.is_linked(repo, digest)
        for _ in range(MAX_ATTEMPTS):
            if linked:
                blob = await self.cache.open(digest)
                if blob is not None:
                    self.metrics.hits += 1
                    return self._from_cache(blob, range_header)
            fill = self.flights.get(digest)
            if fill is None and not linked and await self.cache.contains(digest):
                await self.confirm(repo, digest)
                linked = True
                continue
            if fill is None:
                fill, created = self.flights.claim(digest, lambda: self._new_fill(repo, digest))
                if created:
                    self.metrics.misses += 1
                    self.nursery.start_soon(fill.run)
                    fill.attach()
                    return await self._from_fill(fill, range_header)
            if not linked and fill.repo != repo:
                await self.confirm(repo, digest)
                linked = True
                continue
            self.metrics.coalesced += 1
            fill.attach()
            return await self._from_fill(fill, range_header)
        raise e.RegistryError(e.UNAVAILABLE, "the blob kept changing state; try again")

    def _new_fill(self, repo: str, digest: Digest) -> Fill:
        return Fill(
            repo,
            digest,
            cache=self.cache,
            index=self.index,
            upstream=self.upstream,
            metrics=self.metrics,
            clock=self.clock,
            on_finish=lambda fill: self.flights.release(digest, fill),
        )

    def _from_cache(self, blob: CachedBlob, range_header: str | None) -> BlobBody:
        try:
            byte_range = parse_range(range_header, blob.size)
        except e.RegistryError:
            blob.close()
            raise
        start, end = _span(byte_range, blob.size)
        return BlobBody(blob.size, byte_range, lambda: blob.stream(start, end), blob.close)

    async def _from_fill(self, fill: Fill, range_header: str | None) -> BlobBody:
        """Serve from an attached fill: the whole blob as it grows, a range once it is verified."""
        try:
            await fill.ready.wait()
            if range_header or not fill.size:  # unknown or zero size: nothing may go out before verification
                await fill.done.wait()
                if fill.state is not FillState.VERIFIED:
                    raise fill.error or e.RegistryError(CORRUPT_UPSTREAM)
            elif fill.state is FillState.FAILED:
                raise fill.error or e.RegistryError(CORRUPT_UPSTREAM)
            assert fill.size is not None
            byte_range = parse_range(range_header, fill.size)
        except BaseException:
            fill.detach()
            raise
        start, end = _span(byte_range, fill.size)
        return BlobBody(fill.size, byte_range, lambda: fill.stream(start, end), fill.detach)
