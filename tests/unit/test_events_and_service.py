"""The outbox relay (at-least-once, in order, cursor per subscriber) and service-level upload purging."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from registry.events import OutboxRelay
from registry.oci import errors as e
from registry.oci.digest import Digest
from registry.storage.fs_blobs import FilesystemBlobStore
from registry.storage.records import Event
from registry.storage.service import RegistryService
from registry.storage.sqlite_meta import SqliteMetadataStore, open_sqlite_metadata


class Recorder:
    def __init__(self, name: str, fail_on: int | None = None) -> None:
        self.name = name
        self.seen: list[Event] = []
        self.fail_on = fail_on

    async def handle(self, event: Event) -> None:
        if self.fail_on is not None and len(self.seen) == self.fail_on:
            self.fail_on = None
            raise RuntimeError("subscriber failed once")
        self.seen.append(event)


@pytest.fixture
async def meta(tmp_path: Path) -> AsyncIterator[SqliteMetadataStore]:
    store = await open_sqlite_metadata(tmp_path / "registry.db")
    yield store
    await store.aclose()


async def _body(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def test_relay_delivers_in_order_and_resumes_from_cursor(meta: SqliteMetadataStore) -> None:
    for i in range(5):
        await meta.commit_blob("ns/a", Digest.of(str(i).encode()), i, None)
    first = Recorder("audit")
    relay = OutboxRelay(meta, [first])
    assert await relay.deliver_pending() == 5
    assert [ev.digest for ev in first.seen] == [str(Digest.of(str(i).encode())) for i in range(5)]
    # A new relay (a restart) with the same subscriber name sees only what is new.
    await meta.commit_blob("ns/a", Digest.of(b"new"), 3, None)
    again = Recorder("audit")
    assert await OutboxRelay(meta, [again]).deliver_pending() == 1
    assert [ev.digest for ev in again.seen] == [str(Digest.of(b"new"))]


async def test_failed_delivery_is_retried(meta: SqliteMetadataStore) -> None:
    for i in range(3):
        await meta.commit_blob("ns/a", Digest.of(str(i).encode()), i, None)
    flaky = Recorder("flaky", fail_on=1)
    relay = OutboxRelay(meta, [flaky])
    with pytest.raises(RuntimeError):
        await relay.deliver_pending()
    assert await relay.deliver_pending() == 3  # redelivered from the stored cursor (at least once)
    assert [ev.digest for ev in flaky.seen][-2:] == [str(Digest.of(b"1")), str(Digest.of(b"2"))]


async def test_relay_wakes_on_commit(meta: SqliteMetadataStore) -> None:
    rec = Recorder("live")
    relay = OutboxRelay(meta, [rec], poll_interval=60)
    meta.on_commit = relay.notify
    async with trio.open_nursery() as nursery:
        await nursery.start(relay.serve)
        await meta.commit_blob("ns/a", Digest.of(b"x"), 1, None)
        with trio.fail_after(5):
            while not rec.seen:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert rec.seen[0].kind == "blob.pushed"


async def test_purge_stale_sessions_and_orphan_files(tmp_path: Path, meta: SqliteMetadataStore) -> None:
    blobs = FilesystemBlobStore(tmp_path)
    service = RegistryService(blobs, meta, 4 * 1024 * 1024)
    session = await service.start_upload("ns/a")
    await service.append_chunk("ns/a", session.id, _body(b"abc"), None, 3)
    orphan = await blobs.open_upload("orphan-from-a-crash", 0, None)
    orphan.write(b"partial")
    await orphan.aclose()
    assert await service.purge_stale_uploads(time.time() - 3600) == 0
    assert await service.purge_stale_uploads(time.time() + 1) == 2
    with pytest.raises(e.RegistryError) as info:
        await service.upload("ns/a", session.id)
    assert info.value.code is e.BLOB_UPLOAD_UNKNOWN
    assert list((tmp_path / "uploads").iterdir()) == []


async def test_client_disconnect_mid_chunk_rolls_back(tmp_path: Path, meta: SqliteMetadataStore) -> None:
    blobs = FilesystemBlobStore(tmp_path)
    service = RegistryService(blobs, meta, 4 * 1024 * 1024)
    session = await service.start_upload("ns/a")
    await service.append_chunk("ns/a", session.id, _body(b"good"), None, None)

    async def broken() -> AsyncIterator[bytes]:
        yield b"half of a chunk"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        await service.append_chunk("ns/a", session.id, broken(), None, 100)
    assert (await service.upload("ns/a", session.id)).size == 4
    await service.finish_upload("ns/a", session.id, Digest.of(b"good!"), _body(b"!"), None)
    assert await service.blob_size("ns/a", Digest.of(b"good!")) == 5
