"""A push that races with online GC either completes with every blob intact or fails cleanly.

The interleavings are forced, not hoped for: the real filesystem blob store is wrapped so that GC pauses
between deleting a blob's metadata and deleting its file, or an upload pauses between committing its file
and committing its metadata, while the other side runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from registry.gc.collector import GarbageCollector
from registry.oci import errors as e
from registry.oci.digest import Digest
from registry.storage.fs_blobs import FilesystemBlobStore
from registry.storage.service import RegistryService
from registry.storage.sqlite_db import open_database
from registry.storage.sqlite_meta import SqliteMetadataStore

DATA = b"racing layer " * 4096
DIGEST = Digest.parse("sha256:" + hashlib.sha256(DATA).hexdigest())


class PausingBlobStore(FilesystemBlobStore):
    """The real store; ``pause_on`` names the operation that stops half-way until ``resume`` is set."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.pause_on = ""
        self.paused = trio.Event()
        self.resume = trio.Event()

    async def _maybe_pause(self, name: str) -> None:
        if self.pause_on == name:
            self.pause_on = ""
            self.paused.set()
            await self.resume.wait()

    async def delete(self, digest: Digest) -> None:
        await self._maybe_pause("delete")  # GC: metadata already gone and tombstoned, file not yet deleted
        await super().delete(digest)

    async def commit_upload(self, upload_id: str, digest: Digest) -> None:
        await super().commit_upload(upload_id, digest)
        await self._maybe_pause("commit_upload")  # upload: file in place (or discarded as a duplicate)


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[RegistryService, GarbageCollector, PausingBlobStore]]:
    db = await open_database(tmp_path / "registry.db")
    blobs = PausingBlobStore(tmp_path)
    meta = SqliteMetadataStore(db)
    service = RegistryService(blobs, meta, 4 * 1024 * 1024)
    try:
        yield service, GarbageCollector(service, meta, 3600), blobs
    finally:
        await db.aclose()


async def assert_intact(service: RegistryService, repo: str) -> None:
    assert await service.blob_size(repo, DIGEST) == len(DATA)
    got = b"".join([chunk async for chunk in service.read_blob(DIGEST, 0, len(DATA) - 1)])
    assert got == DATA


def manifest_for(digest: Digest, size: int) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": str(digest), "size": size},
            "layers": [],
        }
    ).encode()


async def test_upload_while_gc_deletes_the_same_digest_fails_cleanly_then_succeeds(
    setup: tuple[RegistryService, GarbageCollector, PausingBlobStore],
) -> None:
    service, gc, blobs = setup
    await service.push_monolithic("ns/a", DIGEST, body(DATA), len(DATA))  # unreferenced: collectable
    blobs.pause_on = "delete"
    async with trio.open_nursery() as nursery:
        reports = []

        async def collect() -> None:
            reports.append(await gc.collect(grace_seconds=0))

        nursery.start_soon(collect)
        await blobs.paused.wait()
        # GC has removed the metadata and holds a tombstone; the file is about to go.
        with pytest.raises(e.RegistryError) as raised:
            await service.push_monolithic("ns/b", DIGEST, body(DATA), len(DATA))
        assert raised.value.code is e.UNAVAILABLE and raised.value.status == 503
        with pytest.raises(e.RegistryError) as refused:
            await service.put_manifest("ns/a", "v1", None, manifest_for(DIGEST, len(DATA)))
        assert refused.value.code is e.MANIFEST_BLOB_UNKNOWN
        assert await service.meta.blob_size("ns/b", DIGEST) is None  # nothing half-linked
        blobs.resume.set()
    assert [b["digest"] for b in reports[0].blobs] == [str(DIGEST)]
    assert not blobs.blob_path(DIGEST).exists()
    # The client's retry succeeds and the blob is intact.
    await service.push_monolithic("ns/b", DIGEST, body(DATA), len(DATA))
    await assert_intact(service, "ns/b")


async def test_upload_that_found_the_file_present_fails_cleanly_if_gc_deleted_it(
    setup: tuple[RegistryService, GarbageCollector, PausingBlobStore],
) -> None:
    service, gc, blobs = setup
    await service.push_monolithic("ns/a", DIGEST, body(DATA), len(DATA))
    blobs.pause_on = "commit_upload"
    async with trio.open_nursery() as nursery:
        outcome: list[BaseException | None] = []

        async def push() -> None:
            try:
                session = await service.start_upload("ns/b")
                await service.finish_upload("ns/b", session.id, DIGEST, body(DATA), len(DATA))
                outcome.append(None)
            except e.RegistryError as err:
                outcome.append(err)

        nursery.start_soon(push)
        await blobs.paused.wait()
        # The upload saw the content present and dropped its own copy; now GC runs to completion.
        report = await gc.collect(grace_seconds=0)
        assert [b["digest"] for b in report.blobs] == [str(DIGEST)]
        blobs.resume.set()
    err = outcome[0]
    assert isinstance(err, e.RegistryError) and err.code is e.UNAVAILABLE
    assert await service.meta.blob_size("ns/b", DIGEST) is None  # no metadata pointing at a missing file
    await service.push_monolithic("ns/b", DIGEST, body(DATA), len(DATA))
    await assert_intact(service, "ns/b")


async def test_push_that_commits_first_keeps_its_blobs(
    setup: tuple[RegistryService, GarbageCollector, PausingBlobStore],
) -> None:
    service, gc, blobs = setup
    blobs.pause_on = "commit_upload"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(service.push_monolithic, "ns/a", DIGEST, body(DATA), len(DATA))
        await blobs.paused.wait()
        # File committed, metadata not yet: GC works from metadata only and cannot see (or delete) it.
        report = await gc.collect(grace_seconds=0)
        assert report.blobs == []
        blobs.resume.set()
    await service.put_manifest("ns/a", "v1", None, manifest_for(DIGEST, len(DATA)))
    report = await gc.collect(grace_seconds=0)
    assert report.blobs == []  # referenced by a manifest
    await assert_intact(service, "ns/a")
    # A HEAD refreshes the grace clock even without a manifest.
    await service.delete_manifest("ns/a", "v1")
    await service.delete_manifest("ns/a", str(Digest.of(manifest_for(DIGEST, len(DATA)))))
    meta = gc.meta
    await service.usage.flush(meta.record_usage)  # earlier reads were touches too
    await meta.db.write(lambda conn: conn.execute("UPDATE blobs SET last_ref = 1, created = 1"))
    assert len((await gc.collect(grace_seconds=3600, dry_run=True)).blobs) == 1  # two hours old: collectable
    await service.blob_size("ns/a", DIGEST)  # HEAD: the client will rely on the blob
    assert (await gc.collect(grace_seconds=3600)).blobs == []
    assert [b["digest"] for b in (await gc.collect(grace_seconds=0)).blobs] == [str(DIGEST)]


async def test_orphan_content_files_are_removed_only_without_metadata(
    setup: tuple[RegistryService, GarbageCollector, PausingBlobStore],
) -> None:
    service, gc, blobs = setup
    await service.push_monolithic("ns/a", DIGEST, body(DATA), len(DATA))
    orphan_data = b"left by a crash between rename and metadata commit"
    orphan = Digest.parse("sha256:" + hashlib.sha256(orphan_data).hexdigest())
    path = blobs.blob_path(orphan)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orphan_data)
    fresh_data = b"an upload that has just renamed its file into place"
    fresh = Digest.parse("sha256:" + hashlib.sha256(fresh_data).hexdigest())
    blobs.blob_path(fresh).parent.mkdir(parents=True, exist_ok=True)
    blobs.blob_path(fresh).write_bytes(fresh_data)
    old = time.time() - 3 * 3600
    for p in (path, blobs.blob_path(DIGEST)):
        os.utime(p, (old, old))
    assert await gc.collect_orphan_files(grace_seconds=7200) == [str(orphan)]
    assert not path.exists()
    assert blobs.blob_path(fresh).exists()  # within the grace period
    await assert_intact(service, "ns/a")  # has metadata: kept however old the file
