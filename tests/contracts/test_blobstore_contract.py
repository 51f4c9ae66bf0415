"""Contract suite for BlobStore: every implementation must pass it unchanged."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from registry.oci.digest import Digest
from registry.storage.fs_blobs import FilesystemBlobStore
from registry.storage.interfaces import BlobStore

IMPLEMENTATIONS: dict[str, Callable[[Path], BlobStore]] = {"filesystem": FilesystemBlobStore}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    yield IMPLEMENTATIONS[request.param](tmp_path)


async def _read_all(store: BlobStore, digest: Digest) -> bytes:
    async with store.open_read(digest) as reader:
        return await reader.read(0, reader.size)


async def test_upload_commit_read(store: BlobStore) -> None:
    writer = await store.open_upload("u1", 0, None)
    writer.write(b"hello ")
    writer.write(memoryview(b"world"))
    digest = await writer.digest("sha256")
    assert writer.size == 11
    await writer.aclose()
    assert digest == Digest.of(b"hello world")
    assert await store.stat(digest) is None
    await store.commit_upload("u1", digest)
    assert await store.stat(digest) == 11
    assert await _read_all(store, digest) == b"hello world"
    async with store.open_read(digest) as reader:
        assert await reader.read(6, 100) == b"world"
    assert [d async for d in store.walk()] == [digest]


async def test_sha512_digest(store: BlobStore) -> None:
    writer = await store.open_upload("u2", 0, None)
    writer.write(b"abc")
    assert (await writer.digest("sha512")).encoded == hashlib.sha512(b"abc").hexdigest()
    await writer.aclose()


async def test_resume_truncates_to_acknowledged_size_and_rehashes(store: BlobStore) -> None:
    writer = await store.open_upload("u3", 0, None)
    writer.write(b"0123456789")
    await writer.aclose()
    # Only 4 bytes were acknowledged: the rest is a chunk that never completed.
    resumed = await store.open_upload("u3", 4, None)
    assert resumed.size == 4
    resumed.write(b"xy")
    assert await resumed.digest("sha256") == Digest.of(b"0123xy")
    await resumed.aclose()


async def test_resume_with_running_hasher(store: BlobStore) -> None:
    writer = await store.open_upload("u4", 0, None)
    writer.write(b"abc")
    hasher = writer.hasher
    await writer.aclose()
    resumed = await store.open_upload("u4", 3, hasher)
    resumed.write(b"def")
    assert await resumed.digest("sha256") == Digest.of(b"abcdef")
    await resumed.truncate(2)
    assert resumed.size == 2 and await resumed.digest("sha256") == Digest.of(b"ab")
    await resumed.aclose()


async def test_missing_or_short_upload_data(store: BlobStore) -> None:
    with pytest.raises(FileNotFoundError):
        await store.open_upload("never-created", 5, None)
    writer = await store.open_upload("u5", 0, None)
    writer.write(b"ab")
    await writer.aclose()
    with pytest.raises(FileNotFoundError):
        await store.open_upload("u5", 3, None)


async def test_commit_keeps_upload_data_until_discarded(store: BlobStore) -> None:
    for upload_id in ("a1", "a2"):  # the second finds the content already there
        writer = await store.open_upload(upload_id, 0, None)
        writer.write(b"same")
        await writer.aclose()
        await store.commit_upload(upload_id, Digest.of(b"same"))
    assert [d async for d in store.walk()] == [Digest.of(b"same")]
    # Until the metadata commits (then the service discards them) a crash must leave the sessions finishable.
    assert sorted(await store.upload_ids_older_than(time.time() + 60)) == ["a1", "a2"]
    resumed = await store.open_upload("a1", 4, None)
    resumed.write(b" and more")
    await resumed.aclose()
    assert await _read_all(store, Digest.of(b"same")) == b"same"  # never written through
    for upload_id in ("a1", "a2"):
        await store.discard_upload(upload_id)
    assert await store.upload_ids_older_than(time.time() + 60) == []
    assert await _read_all(store, Digest.of(b"same")) == b"same"


async def test_discard_and_delete(store: BlobStore) -> None:
    writer = await store.open_upload("d1", 0, None)
    writer.write(b"gone")
    await writer.aclose()
    assert await store.upload_ids_older_than(time.time() + 60) == ["d1"]
    assert await store.upload_ids_older_than(time.time() - 3600) == []
    await store.discard_upload("d1")
    await store.discard_upload("d1")  # idempotent
    assert await store.upload_ids_older_than(time.time() + 60) == []
    writer = await store.open_upload("d2", 0, None)
    writer.write(b"x")
    await writer.aclose()
    await store.commit_upload("d2", Digest.of(b"x"))
    await store.delete(Digest.of(b"x"))
    assert await store.stat(Digest.of(b"x")) is None
    with pytest.raises(FileNotFoundError):
        async with store.open_read(Digest.of(b"x")):
            pass


async def test_upload_ids_cannot_escape(store: BlobStore) -> None:
    with pytest.raises(FileNotFoundError):
        await store.open_upload("../../etc/passwd", 0, None)


def test_filesystem_layout(tmp_path: Path) -> None:
    """The on-disk layout documented in fs_blobs (operators and fsck rely on it)."""
    store = FilesystemBlobStore(tmp_path)
    d = Digest.of(b"z")
    assert store.blob_path(d) == tmp_path / "blobs" / "sha256" / d.encoded[:2] / d.encoded
    assert os.path.isdir(tmp_path / "uploads")


async def test_upload_lock_excludes_a_second_store_on_the_same_root(tmp_path: Path, store: BlobStore) -> None:
    """Two stores on one root stand for two worker processes (``server.workers``): while one holds an upload's
    lock the other waits; a missing upload is not an error (opening it fails later, as usual)."""
    import trio

    other = type(store)(tmp_path)
    writer = await store.open_upload("u-lock", 0, None)
    await writer.aclose()
    order: list[str] = []

    async def second() -> None:
        async with other.lock_upload("u-lock"):
            order.append("second")

    async with trio.open_nursery() as nursery, store.lock_upload("u-lock"):
        nursery.start_soon(second)
        await trio.sleep(0.2)
        order.append("first released")
    assert order == ["first released", "second"]
    async with store.lock_upload("never-created"):
        pass
