"""Regression (found by the kill -9 rounds): a crash after the blob's content was placed but before its
metadata committed must leave the upload session resumable.

The final PUT of a chunked upload used to *rename* the upload data to its content path and then commit the
metadata. A crash in between left the session's row (size: every byte acknowledged) without its data, so the
client's retried PUT got ``BLOB_UPLOAD_UNKNOWN`` "upload data was lost" and had to upload again. The content
is now hard-linked into place and the upload data removed only after the metadata committed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from registry.oci.digest import Digest
from registry.storage.fs_blobs import FilesystemBlobStore
from registry.storage.service import RegistryService
from registry.storage.sqlite_meta import SqliteMetadataStore, open_sqlite_metadata

DATA = b"chunk one|" * 1000 + b"chunk two|" * 1000
DIGEST = Digest.of(DATA)


class Crash(BaseException):
    """Stands in for kill -9: nothing after it runs (no cleanup handler catches a BaseException)."""


class CrashingMeta(SqliteMetadataStore):
    async def commit_blob(self, *args: object, **kwargs: object) -> None:
        raise Crash


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _read(service: RegistryService) -> bytes:
    return b"".join([c async for c in service.read_blob(DIGEST, 0, len(DATA) - 1)])


@pytest.mark.parametrize("already_present", [False, True], ids=["new-content", "content-already-present"])
async def test_put_retried_after_a_crash_between_content_and_metadata_commit(
    tmp_path: Path, already_present: bool
) -> None:
    meta = await open_sqlite_metadata(tmp_path / "registry.db")
    try:
        service = RegistryService(FilesystemBlobStore(tmp_path), meta, 1 << 20)
        if already_present:  # another repository has the content: the upload's own copy is the duplicate
            await service.push_monolithic("other/repo", DIGEST, _body(DATA), len(DATA))
        session = await service.start_upload("ns/app")
        half = len(DATA) // 2
        await service.append_chunk("ns/app", session.id, _body(DATA[:half]), (0, half - 1), half)
        await service.append_chunk("ns/app", session.id, _body(DATA[half:]), (half, len(DATA) - 1), None)
        crashing = RegistryService(FilesystemBlobStore(tmp_path), CrashingMeta(meta.db), 1 << 20)
        with pytest.raises(Crash):
            await crashing.finish_upload("ns/app", session.id, DIGEST, _body(b""), 0)

        restarted = RegistryService(FilesystemBlobStore(tmp_path), meta, 1 << 20)  # no in-memory state
        assert (await restarted.upload("ns/app", session.id)).size == len(DATA)  # every byte acknowledged
        await restarted.finish_upload("ns/app", session.id, DIGEST, _body(b""), 0)
        assert await restarted.blob_size("ns/app", DIGEST) == len(DATA)
        assert await _read(restarted) == DATA
        assert list((tmp_path / "uploads").iterdir()) == []  # the upload data went once the metadata committed
    finally:
        await meta.aclose()


async def test_writing_to_a_resumed_upload_never_changes_committed_content(tmp_path: Path) -> None:
    """After the crash the upload data and the content file may be one inode; a client that resumes the
    session and appends must get its own copy, never write through into the content-addressed file."""
    store = FilesystemBlobStore(tmp_path)
    writer = await store.open_upload("u1", 0, None)
    writer.write(DATA)
    await writer.aclose()
    await store.commit_upload("u1", DIGEST)  # a crash here: the metadata never committed
    resumed = await store.open_upload("u1", len(DATA), None)
    resumed.write(b"more bytes appended after the restart")
    await resumed.truncate(10)
    await resumed.aclose()
    assert store.blob_path(DIGEST).read_bytes() == DATA
    assert (tmp_path / "uploads" / "u1").read_bytes() == DATA[:10]
