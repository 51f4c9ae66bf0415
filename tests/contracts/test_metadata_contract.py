"""Contract suite for MetadataStore: every implementation must pass it unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trio

from registry.oci import errors as e
from registry.oci.digest import Digest
from registry.storage.interfaces import MetadataStore
from registry.storage.records import ManifestRecord, ManifestRef
from registry.storage.sqlite_meta import open_sqlite_metadata


async def _sqlite(tmp_path: Path) -> MetadataStore:
    return await open_sqlite_metadata(tmp_path / "registry.db")


IMPLEMENTATIONS: dict[str, Callable[[Path], Awaitable[MetadataStore]]] = {"sqlite": _sqlite}

B1, B2 = Digest.of(b"blob1"), Digest.of(b"blob2")


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
async def meta(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MetadataStore]:
    store = await IMPLEMENTATIONS[request.param](tmp_path)
    try:
        yield store
    finally:
        await store.aclose()


def _manifest(content: bytes, subject: Digest | None = None, artifact_type: str | None = None) -> ManifestRecord:
    return ManifestRecord(
        Digest.of(content), "application/vnd.oci.image.manifest.v1+json", content, artifact_type, subject, None
    )


async def _kinds(meta: MetadataStore) -> list[str]:
    return [ev.kind for ev in await meta.events_after(0, 1000)]


async def test_blob_membership_is_per_repository(meta: MetadataStore) -> None:
    await meta.commit_blob("ns/a", B1, 5, None)
    assert await meta.blob_size("ns/a", B1) == 5
    assert await meta.blob_size("ns/b", B1) is None
    assert await meta.mount_blob("ns/b", "ns/c", B1) is None
    assert await meta.mount_blob("ns/b", "ns/a", B1) == 5
    assert await meta.blob_size("ns/b", B1) == 5
    assert await meta.unlink_blob("ns/a", B1) is True
    assert await meta.unlink_blob("ns/a", B1) is False
    assert await meta.blob_size("ns/a", B1) is None and await meta.blob_size("ns/b", B1) == 5
    assert [r.digest for r in await meta.all_blobs()] == [B1]
    assert await _kinds(meta) == ["blob.pushed", "blob.mounted", "blob.deleted"]


async def test_manifest_with_missing_blob_changes_nothing(meta: MetadataStore) -> None:
    await meta.commit_blob("ns/a", B1, 5, None)
    m = _manifest(b"m1")
    with pytest.raises(e.RegistryError) as info:
        await meta.put_manifest("ns/a", m, [ManifestRef(B1, "blob"), ManifestRef(B2, "blob")], "v1")
    assert info.value.code is e.MANIFEST_BLOB_UNKNOWN and str(B2) in info.value.detail["missing"]
    assert await meta.get_manifest("ns/a", "v1") is None
    assert await meta.get_manifest("ns/a", m.digest) is None
    assert await _kinds(meta) == ["blob.pushed"]
    # External (non-distributable) layers are never required.
    await meta.put_manifest("ns/a", m, [ManifestRef(B1, "blob"), ManifestRef(B2, "external")], "v1")
    assert (await meta.get_manifest("ns/a", "v1")) == m


async def test_tags_move_and_delete(meta: MetadataStore) -> None:
    m1, m2 = _manifest(b"m1"), _manifest(b"m2")
    await meta.put_manifest("ns/a", m1, [], "latest")
    await meta.put_manifest("ns/a", m1, [], "latest")  # idempotent: no new events
    await meta.put_manifest("ns/a", m2, [], "latest")
    got = await meta.get_manifest("ns/a", "latest")
    assert got is not None and got.digest == m2.digest and got.content == b"m2"
    assert await meta.get_manifest("ns/a", m1.digest) == m1  # still there by digest
    assert await meta.get_manifest("ns/other", m1.digest) is None
    assert await _kinds(meta) == ["manifest.pushed", "tag.moved", "manifest.pushed", "tag.moved"]
    assert await meta.delete_tag("ns/a", "latest") is True
    assert await meta.delete_tag("ns/a", "latest") is False
    assert await meta.get_manifest("ns/a", m2.digest) is not None


async def test_delete_manifest_removes_its_tags(meta: MetadataStore) -> None:
    m = _manifest(b"m")
    await meta.put_manifest("ns/a", m, [], "t1")
    await meta.put_manifest("ns/a", m, [], "t2")
    assert await meta.delete_manifest("ns/a", m.digest) is True
    assert await meta.delete_manifest("ns/a", m.digest) is False
    assert await meta.get_manifest("ns/a", "t1") is None
    assert await meta.list_tags("ns/a", 10, None) == []


async def test_child_manifests_must_be_in_repository(meta: MetadataStore) -> None:
    child = _manifest(b"child")
    index = _manifest(b"index")
    with pytest.raises(e.RegistryError):
        await meta.put_manifest("ns/a", index, [ManifestRef(child.digest, "child")], None)
    await meta.put_manifest("ns/a", child, [], None)
    await meta.put_manifest("ns/a", index, [ManifestRef(child.digest, "child")], "multi")
    assert [(r, m, ref, k) for r, m, ref, k in await meta.all_manifest_refs()] == [
        ("ns/a", index.digest, child.digest, "child")
    ]


async def test_tag_and_repository_pagination(meta: MetadataStore) -> None:
    assert await meta.list_tags("ns/none", 10, None) is None
    for tag in ["b", "a", "c", "d"]:
        await meta.put_manifest("ns/p", _manifest(tag.encode()), [], tag)
    assert await meta.list_tags("ns/p", 10, None) == ["a", "b", "c", "d"]
    assert await meta.list_tags("ns/p", 2, None) == ["a", "b"]
    assert await meta.list_tags("ns/p", 2, "b") == ["c", "d"]
    assert await meta.list_tags("ns/p", 0, None) == []
    await meta.commit_blob("ns/q", B1, 5, None)
    await meta.commit_blob("aa/r", B1, 5, None)
    assert await meta.list_repositories(10, None) == ["aa/r", "ns/p", "ns/q"]
    assert await meta.list_repositories(1, "aa/r") == ["ns/p"]


async def test_referrers(meta: MetadataStore) -> None:
    subject = Digest.of(b"subject-not-pushed-yet")
    r1 = _manifest(b"r1", subject, "application/vnd.example.sbom")
    r2 = _manifest(b"r2", subject, "application/vnd.example.sig")
    await meta.put_manifest("ns/a", r1, [], None)
    await meta.put_manifest("ns/a", r2, [], None)
    found = await meta.referrers("ns/a", subject)
    assert sorted(r.digest for r in found) == sorted([r1.digest, r2.digest])
    assert {r.artifact_type for r in found} == {"application/vnd.example.sbom", "application/vnd.example.sig"}
    assert all(r.size == 2 for r in found)
    assert await meta.referrers("ns/b", subject) == []
    await meta.delete_manifest("ns/a", r1.digest)
    assert [r.digest for r in await meta.referrers("ns/a", subject)] == [r2.digest]


async def test_upload_sessions(meta: MetadataStore) -> None:
    await meta.create_upload("ns/a", "u1", 100.0)
    session = await meta.get_upload("ns/a", "u1")
    assert session is not None and session.size == 0 and session.repo == "ns/a"
    assert await meta.get_upload("ns/b", "u1") is None  # sessions belong to their repository
    await meta.set_upload_size("u1", 42, 200.0)
    session = await meta.get_upload("ns/a", "u1")
    assert session is not None and session.size == 42 and session.updated == 200.0
    assert await meta.upload_exists("u1")
    assert await meta.stale_uploads(150.0) == []
    assert await meta.stale_uploads(250.0) == ["u1"]
    await meta.commit_blob("ns/a", B1, 42, "u1")  # committing a blob ends its session
    assert not await meta.upload_exists("u1")


async def test_outbox_cursor(meta: MetadataStore) -> None:
    await meta.commit_blob("ns/a", B1, 1, None)
    await meta.commit_blob("ns/a", B2, 1, None)
    events = await meta.events_after(0, 10)
    assert [ev.digest for ev in events] == [str(B1), str(B2)] and events[0].id < events[1].id
    assert await meta.cursor("audit") == 0
    await meta.set_cursor("audit", events[0].id)
    assert await meta.cursor("audit") == events[0].id
    assert [ev.digest for ev in await meta.events_after(events[0].id, 10)] == [str(B2)]


async def test_concurrent_writers_in_two_stores(tmp_path: Path) -> None:
    """A CLI process beside the server: two stores on one file, writes interleaved, none lost."""
    a = await open_sqlite_metadata(tmp_path / "registry.db")
    b = await open_sqlite_metadata(tmp_path / "registry.db")
    try:
        async with trio.open_nursery() as nursery:
            for i in range(40):
                store = a if i % 2 else b
                nursery.start_soon(store.commit_blob, f"ns/r{i % 5}", Digest.of(str(i).encode()), i, None)
        assert len(await a.all_blobs()) == 40
        assert len(await b.events_after(0, 100)) == 40
    finally:
        await a.aclose()
        await b.aclose()
