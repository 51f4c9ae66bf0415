"""The diskcache adapter: file values adopted by rename, pickles refused, size limit and LRU eviction.
Auth mode: not involved (the cache adapter alone)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import diskcache
import pytest

from edge.blobcache import DiskBlobCache, UnsafeCacheData, open_blob_cache
from registry.oci.digest import Digest

MIB = 1024 * 1024


def _temp(cache: DiskBlobCache, data: bytes) -> Path:
    path = cache.temp_path()
    path.write_bytes(data)
    return path


def _digest(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


async def test_commit_adopts_the_file_without_copying(tmp_path: Path) -> None:
    cache = await open_blob_cache(tmp_path, 10 * MIB)
    data = os.urandom(100_000)
    path = _temp(cache, data)
    inode = path.stat().st_ino
    await cache.commit(_digest(data), path, len(data))
    assert not path.exists()
    blob = await cache.open(_digest(data))
    assert blob is not None
    assert os.fstat(blob.file.fileno()).st_ino == inode
    assert b"".join([chunk async for chunk in blob.stream(0, blob.size - 1)]) == data
    blob.close()
    cache.close()


async def test_pickled_rows_are_refused(tmp_path: Path) -> None:
    # A row diskcache itself would unpickle: a tuple key and an object value, written by plain diskcache.
    planted = diskcache.Cache(str(tmp_path / "blobs"))
    planted.set("sha256:" + "0" * 64, {"not": "bytes"})
    planted.set(("tuple", "key"), b"x")
    planted.close()
    cache = await open_blob_cache(tmp_path, 10 * MIB)
    with pytest.raises(UnsafeCacheData):
        await cache.open(Digest("sha256", "0" * 64))
    with pytest.raises(UnsafeCacheData):
        list(cache._cache.iterkeys())
    with pytest.raises(TypeError):
        cache._cache.set("k", b"raw bytes")
    cache.close()


async def test_size_limit_and_lru_eviction(tmp_path: Path) -> None:
    cache = await open_blob_cache(tmp_path, 8 * MIB)
    blobs = [os.urandom(MIB) for _ in range(20)]
    hot = _digest(blobs[0])
    evicted = 0
    for data in blobs:
        evicted += await cache.commit(_digest(data), _temp(cache, data), len(data))
        blob = await cache.open(hot)  # keep the first one recently used
        assert blob is not None
        blob.close()
        volume, _ = await cache.usage()
        assert volume <= 8 * MIB
    on_disk = sum(p.stat().st_size for p in (tmp_path / "blobs").rglob("*.val"))
    assert on_disk <= 8 * MIB
    assert evicted >= 12
    assert await cache.contains(hot)
    assert not await cache.contains(_digest(blobs[1]))
    assert await cache.contains(_digest(blobs[-1]))
    cache.close()


async def test_fills_in_flight_count_against_the_limit(tmp_path: Path) -> None:
    cache = await open_blob_cache(tmp_path, 8 * MIB)
    for _ in range(6):
        data = os.urandom(MIB)
        await cache.commit(_digest(data), _temp(cache, data), len(data))
    assert cache.reserve(4 * MIB)
    assert await cache.cull() >= 2
    volume, _ = await cache.usage()
    assert volume + cache.reserved <= 8 * MIB
    assert not cache.reserve(9 * MIB), "a blob larger than the cache is never reserved"
    cache.release(4 * MIB)
    cache.close()
