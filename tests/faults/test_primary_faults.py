"""Faults under a real primary process: a full disk (ENOSPC from a tiny tmpfs), a data directory that turns
read-only under the running server, and SQLite locked by another process.

Each fault must give a clear OCI error envelope with its status (507 for a full disk, 503 for the others), leave
nothing partial behind (``registry fsck`` clean, no acknowledged content lost), keep reads working, and the
registry must recover by itself once the fault is gone.
"""

from __future__ import annotations

import os
import time

import httpx
import pytest
import trio

from tests.api.ocihelpers import OCI_MANIFEST, digest, image_manifest, push_blob, push_image
from tests.faults.conftest import DatabaseLock, SmallDisk, fsck, oci_error, survived, unique
from tests.serverproc import RegistryProcess

pytestmark = pytest.mark.e2e


def _pull_ok(client: httpx.Client, repo: str, manifest: bytes) -> None:
    pulled = client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert pulled.status_code == 200 and pulled.content == manifest


def _no_uploads_left(proc: RegistryProcess) -> None:
    leftovers = list((proc.data / "uploads").iterdir())
    assert leftovers == [], f"partial upload data left behind: {leftovers}"


def test_full_disk_answers_507_and_leaves_nothing_partial(
    small_disk: SmallDisk, disk_registry: RegistryProcess
) -> None:
    with httpx.Client(base_url=disk_registry.url, timeout=60) as client:
        repo = unique("full")
        manifest = push_image(client, repo, "v1")
        small_disk.fill(free=256 * 1024)

        big = os.urandom(2 * 1024 * 1024)
        monolithic = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest(big)}, content=big)
        assert oci_error(monolithic) == (507, "UNAVAILABLE"), monolithic.text
        survived("disk full: monolithic blob push")

        started = client.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202
        location = started.headers["location"]
        chunk = client.patch(location, content=big, headers={"Content-Type": "application/octet-stream"})
        assert oci_error(chunk) == (507, "UNAVAILABLE"), chunk.text
        survived("disk full: chunked blob push")

        assert client.head(f"/v2/{repo}/blobs/{digest(big)}").status_code == 404, "no partial blob is visible"
        _pull_ok(client, repo, manifest)  # reads keep working on a full disk
        survived("disk full: pulls still served")

        small_disk.release()
        assert push_blob(client, repo, big) == digest(big), "recovers once space is back"
        fresh = push_image(client, repo, "v2")
        assert client.get(f"/v2/{repo}/manifests/v2", headers={"Accept": OCI_MANIFEST}).content == fresh
    report = fsck(disk_registry)
    assert report.returncode == 0, report.stdout + report.stderr


def test_full_disk_during_manifest_and_metadata_writes(small_disk: SmallDisk, disk_registry: RegistryProcess) -> None:
    """SQLite itself runs out of space (``database or disk is full``): a clear error, not a 500."""
    with httpx.Client(base_url=disk_registry.url, timeout=60) as client:
        repo = unique("fullmeta")
        config, layer = b'{"architecture":"amd64","os":"linux"}', os.urandom(4096)
        push_blob(client, repo, config)
        push_blob(client, repo, layer)
        small_disk.fill(free=0)
        failures = 0
        for i in range(20):  # manifests with big annotations until the database cannot grow
            doc = image_manifest(config, [layer], annotations={"pad": "x" * 200_000, "i": str(i)})
            put = client.put(f"/v2/{repo}/manifests/t{i}", content=doc, headers={"Content-Type": OCI_MANIFEST})
            if put.status_code == 201:
                continue
            assert oci_error(put) == (507, "UNAVAILABLE"), put.text
            failures += 1
            assert client.get(f"/v2/{repo}/manifests/t{i}").status_code == 404, "nothing partial is visible"
        assert failures > 0, "the disk never filled up"
        survived("disk full: manifest/metadata write")
        small_disk.release()
        doc = image_manifest(config, [layer], annotations={"after": "space is back"})
        assert (
            client.put(f"/v2/{repo}/manifests/ok", content=doc, headers={"Content-Type": OCI_MANIFEST}).status_code
            == 201
        )
    report = fsck(disk_registry)
    assert report.returncode == 0, report.stdout + report.stderr


def test_read_only_blob_directories_answer_503_and_keep_serving_reads(
    small_disk: SmallDisk, disk_registry: RegistryProcess
) -> None:
    with httpx.Client(base_url=disk_registry.url, timeout=60) as client:
        repo = unique("ro")
        manifest = push_image(client, repo, "v1")
        small_disk.readonly(True, "blobs", "uploads")
        try:
            data = os.urandom(10_000)
            blob = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest(data)}, content=data)
            assert oci_error(blob) == (503, "UNAVAILABLE"), blob.text
            survived("read-only data dir: blob push")
            session = client.post(f"/v2/{repo}/blobs/uploads/")
            assert oci_error(session) == (503, "UNAVAILABLE"), session.text
            survived("read-only data dir: upload session")
            chunked = client.put(location := f"/v2/{repo}/blobs/uploads/x-none", params={"digest": digest(data)})
            assert chunked.status_code == 404, (location, chunked.text)  # an unknown session stays a 404
            _pull_ok(client, repo, manifest)
            survived("read-only data dir: pulls still served")
        finally:
            small_disk.readonly(False, "blobs", "uploads")
        assert push_blob(client, repo, data) == digest(data), "recovers once writable again"
    report = fsck(disk_registry)
    assert report.returncode == 0, report.stdout + report.stderr
    _no_uploads_left(disk_registry)


@pytest.mark.slow  # waits out the 10 s busy timeout several times; the fast twin is in test_storage_fault_units
async def test_database_locked_by_another_process_answers_503_and_reads_go_on(registry: RegistryProcess) -> None:
    """Another process holds SQLite's exclusive lock past the busy timeout: writes get 503 with Retry-After,
    reads (WAL) keep being served, and writes work again once the lock is gone."""
    async with httpx.AsyncClient(base_url=registry.url, timeout=60) as client:
        repo = unique("locked")
        config = b'{"architecture":"amd64","os":"linux"}'
        layer = os.urandom(2048)
        for data in (config, layer):
            assert (
                await client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest(data)}, content=data)
            ).status_code == 201
        manifest = image_manifest(config, [layer])
        assert (
            await client.put(f"/v2/{repo}/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST})
        ).status_code == 201

        lock = DatabaseLock(registry.data / "registry.db")
        try:
            doc = image_manifest(config, [layer], annotations={"while": "locked"})
            started = time.monotonic()
            results: dict[str, httpx.Response] = {}

            async def put() -> None:
                results["put"] = await client.put(
                    f"/v2/{repo}/manifests/v2", content=doc, headers={"Content-Type": OCI_MANIFEST}
                )

            async with trio.open_nursery() as nursery:
                nursery.start_soon(put)
                await trio.sleep(0.5)
                pulled = await client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
                assert pulled.status_code == 200 and pulled.content == manifest, "reads go on under the lock"
                survived("sqlite locked: pulls still served")
            status, code = oci_error(results["put"])
            assert (status, code) == (503, "UNAVAILABLE"), results["put"].text
            assert "retry-after" in results["put"].headers
            assert time.monotonic() - started < 90  # the write and the audit record each wait the busy timeout
            survived("sqlite locked: manifest push")
        finally:
            lock.release()
        missing = await client.get(f"/v2/{repo}/manifests/v2")
        assert missing.status_code == 404
        again = await client.put(f"/v2/{repo}/manifests/v2", content=doc, headers={"Content-Type": OCI_MANIFEST})
        assert again.status_code == 201
    report = fsck(registry)
    assert report.returncode == 0, report.stdout + report.stderr
