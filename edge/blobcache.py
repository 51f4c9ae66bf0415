"""The edge's blob cache: verified blobs as files, indexed by digest in a ``diskcache.Cache``, with a size limit and
least-recently-used eviction.

On-disk layout under ``<cache_dir>``::

    blobs/cache.db            diskcache's SQLite index: key = digest string, value = a file (never a pickle)
    blobs/xx/yy/<hex>.val     one file per blob, named by diskcache at random (the key is in the index)
    tmp/fill-<hex>            fills in flight; on the same file system, so a verified fill is adopted by rename

This module never unpickles anything from the cache directory (diskcache 5.6.3 unpickles keys and values of
its own making, and anyone who can write the directory could plant one): :class:`RawFileDisk` accepts only
``str`` keys and file values and refuses every other row. It never checks digests either: callers commit only
files whose digest and size they verified (see ``edge.fill``).

Every diskcache call runs in a worker thread (``trio.to_thread.run_sync``). diskcache's own culling on ``set``
is off (``cull_limit=0``); :meth:`DiskBlobCache.cull` runs after every commit and before every fill, and evicts
one least-recently-used blob at a time until ``volume + bytes of fills in flight <= size limit``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import diskcache
import trio

from registry.oci.digest import Digest

UNKNOWN = diskcache.core.UNKNOWN
MODE_BINARY = diskcache.core.MODE_BINARY
READ_CHUNK = 2 * 1024 * 1024  # a warm GET: 1 MiB → 2 MiB cut the edge's CPU-s per GiB by ~20 % (docs/edge.md)


class UnsafeCacheData(Exception):
    """The cache index holds a row this edge never writes (a pickled key or value): refused, not loaded."""


@dataclass(frozen=True)
class AdoptFile:
    """A value for :meth:`RawFileDisk.store`: move the file at ``path`` (``size`` bytes) into the cache."""

    path: str
    size: int


class RawFileDisk(diskcache.Disk):  # type: ignore[misc]
    """A ``diskcache.Disk`` that stores ``str`` keys raw and values only as files it adopts by rename, and
    refuses to unpickle anything."""

    def put(self, key: Any) -> tuple[Any, bool]:
        if type(key) is not str:
            raise TypeError(f"blob cache keys are digest strings, not {type(key).__name__}")
        return key, True

    def get(self, key: Any, raw: bool) -> Any:
        if not raw or type(key) is not str:
            raise UnsafeCacheData("refusing a non-raw key from the cache index")
        return key

    def store(self, value: Any, read: bool, key: Any = UNKNOWN) -> tuple[int, int, str, None]:
        if not isinstance(value, AdoptFile):
            raise TypeError("the blob cache stores only adopted files")
        filename, full_path = self.filename(key, value)
        os.makedirs(os.path.dirname(full_path), exist_ok=True)
        os.rename(value.path, full_path)
        return value.size, MODE_BINARY, filename, None

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode != MODE_BINARY or filename is None or value is not None or not read:
            raise UnsafeCacheData(f"refusing a cache row of mode {mode}")
        return open(os.path.join(self._directory, filename), "rb")


class _LruCache(diskcache.Cache):  # type: ignore[misc]
    """``diskcache.Cache`` with an eviction that stops as soon as the target is met: ``Cache.cull`` removes ten
    rows per round, which empties a cache of a few large blobs. Uses diskcache 5.6.3 internals (pinned)."""

    def evict_until(self, target: int) -> int:
        policy = diskcache.core.EVICTION_POLICY[self.eviction_policy]["cull"]
        now = time.time()
        select = policy.format(fields="filename", now=now)
        rowids = policy.format(fields="rowid", now=now)  # diskcache's constant policy SQL, no input in it
        delete = f"DELETE FROM Cache WHERE rowid IN ({rowids})"  # noqa: S608
        count = 0
        while self.volume() > target:
            with self._transact(True) as (sql, cleanup):
                rows = sql(select, (1,)).fetchall()
                if not rows:
                    break
                sql(delete, (1,))
                cleanup(rows[0][0])
                count += 1
        return count


@dataclass
class CachedBlob:
    """An open cached blob. The file stays readable after an eviction until :meth:`close`."""

    file: BinaryIO
    size: int

    async def stream(self, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """Bytes ``start..end`` (inclusive), read in worker threads.

        Raises:
            OSError: the file is shorter than ``end`` (it was truncated behind the cache's back).
        """
        fd = self.file.fileno()
        while start <= end:
            data = await trio.to_thread.run_sync(os.pread, fd, min(READ_CHUNK, end - start + 1), start)
            if not data:
                raise OSError(f"cached blob ended at {start} of {self.size} bytes")
            start += len(data)
            yield data

    def close(self) -> None:
        self.file.close()


class DiskBlobCache:
    """Verified blobs by digest, at most ``limit`` bytes including fills in flight. Open with
    :func:`open_blob_cache`."""

    def __init__(self, root: Path, limit: int) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.limit = limit
        self.reserved = 0  # bytes of fills in flight that will be committed (event loop only)
        self._cull_lock = threading.Lock()
        self._cache = _LruCache(
            str(root / "blobs"),
            disk=RawFileDisk,
            size_limit=limit,
            cull_limit=0,
            eviction_policy="least-recently-used",
            statistics=0,
            timeout=60,
        )

    def temp_path(self) -> Path:
        return self.tmp / f"fill-{secrets.token_hex(12)}"

    def reserve(self, size: int) -> bool:
        """Count a fill of ``size`` bytes against the limit. False: it can never fit, do not commit it."""
        if size > self.limit:
            return False
        self.reserved += size
        return True

    def release(self, size: int) -> None:
        self.reserved -= size

    async def open(self, digest: Digest) -> CachedBlob | None:
        """The cached blob (marked as just used), or None."""

        def get() -> CachedBlob | None:
            file = self._cache.get(str(digest), read=True)
            if file is None:
                return None
            return CachedBlob(file, os.fstat(file.fileno()).st_size)

        return await trio.to_thread.run_sync(get)

    async def contains(self, digest: Digest) -> bool:
        return await trio.to_thread.run_sync(self._cache.__contains__, str(digest))

    async def commit(self, digest: Digest, path: Path, size: int) -> int:
        """Adopt the verified file at ``path`` as ``digest`` (a rename, no copy), then cull.

        The caller still holds its reservation; it is not counted twice. Returns the number of evicted blobs.
        """
        await trio.to_thread.run_sync(lambda: self._cache.set(str(digest), AdoptFile(str(path), size)))
        return await self.cull(exclude=size)

    async def cull(self, exclude: int = 0) -> int:
        """Evict least-recently-used blobs until ``volume + reserved - exclude <= limit``. Returns the count."""
        target = self.limit - max(self.reserved - exclude, 0)

        def run() -> int:
            with self._cull_lock:
                return self._cache.evict_until(target)

        return await trio.to_thread.run_sync(run)

    async def usage(self) -> tuple[int, int]:
        """(bytes on disk as diskcache counts them, number of blobs)."""
        return await trio.to_thread.run_sync(lambda: (int(self._cache.volume()), len(self._cache)))

    def close(self) -> None:
        self._cache.close()


async def open_blob_cache(root: Path, limit: int) -> DiskBlobCache:
    """Open (creating) the cache under ``root`` and remove fills left over by a previous process."""

    def prepare() -> DiskBlobCache:
        shutil.rmtree(root / "tmp", ignore_errors=True)
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        return DiskBlobCache(root, limit)

    cache = await trio.to_thread.run_sync(prepare)
    await cache.cull()
    return cache
