"""A real edge process in front of a real primary (directly or through a fault-injecting proxy), driven by curl
and httpx: coalescing, corruption, eviction, repository scoping, ``ns`` mapping and stale tags.
Auth mode of every test here: none (an open primary, ``--auth none``)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.edge.conftest import EdgeFactory, FaultProxyProcess, blob_gets
from tests.edge.ocipush import push_blob, push_file, push_manifest, random_file, unique_repo
from tests.imagebuild import OCI_CONFIG, OCI_MANIFEST, sha256
from tests.serverproc import RegistryProcess

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


def _small_image(base_url: str, repo: str, tag: str, text: bytes) -> tuple[str, bytes]:
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' + text
    layer = os.urandom(1000)
    doc = (
        b'{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%d},'
        b'"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}'
    ) % (OCI_MANIFEST.encode(), OCI_CONFIG.encode(), sha256(config).encode(), len(config), sha256(layer).encode(), 1000)
    push_blob(base_url, repo, config)
    push_blob(base_url, repo, layer)
    return push_manifest(base_url, repo, tag, doc), doc


def test_ten_concurrent_cold_gets_make_one_upstream_get(
    primary: RegistryProcess, make_edge: EdgeFactory, tmp_path: Path
) -> None:
    repo = unique_repo("big")
    digest = random_file(tmp_path / "big.bin", 256 * MIB)
    push_file(primary.url, repo, tmp_path / "big.bin", digest)
    (tmp_path / "big.bin").unlink()
    edge = make_edge(primary.url)
    url = f"{edge.url}/v2/{repo}/blobs/{digest}"
    clients = [
        subprocess.Popen(
            ["bash", "-c", f"set -o pipefail; curl -sSf --max-time 120 '{url}' | openssl dgst -sha256 -r"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(10)
    ]
    results = [client.communicate(timeout=150) for client in clients]
    for client, (out, err) in zip(clients, results, strict=True):
        assert client.returncode == 0, err
        assert "sha256:" + out.split()[0] == digest
    assert blob_gets(primary, repo, digest) == 1
    stats = edge.stats()
    assert stats["misses"] == 1 and stats["coalesced"] + stats["hits"] == 9
    assert 256 * MIB <= stats["upstream_bytes"] < 257 * MIB
    assert stats["bytes_served"] >= 10 * 256 * MIB


@pytest.mark.parametrize("size", [100_000, 3 * MIB])
def test_corrupting_upstream_is_never_cached(
    primary: RegistryProcess, fault_proxy: FaultProxyProcess, make_edge: EdgeFactory, size: int
) -> None:
    repo = unique_repo("corrupt")
    data = os.urandom(size)
    digest = push_blob(primary.url, repo, data)
    edge = make_edge(fault_proxy.url)
    url = f"{edge.url}/v2/{repo}/blobs/{digest}"
    fault_proxy.set(corrupt=[digest])
    for _ in range(2):
        # The headers went out, then the connection was dropped short.
        with pytest.raises(httpx.HTTPError), httpx.stream("GET", url, timeout=30) as response:
            assert response.status_code == 200
            assert len(response.read()) < size
    stats = edge.stats()
    assert stats["digest_mismatches"] == 2 and stats["cache_blobs"] == 0 and stats["fills"] == 0

    fault_proxy.set(corrupt=[])
    assert httpx.get(url, timeout=30).content == data
    assert httpx.get(url, timeout=30).content == data
    stats = edge.stats()
    assert stats["fills"] == 1 and stats["hits"] == 1 and stats["cache_blobs"] == 1
    gets = [path for method, path in fault_proxy.requests() if method == "GET" and path.endswith(digest)]
    assert len(gets) == 3


def test_size_limit_and_lru_hold_under_a_larger_workload(primary: RegistryProcess, make_edge: EdgeFactory) -> None:
    repo = unique_repo("lru")
    blobs = [os.urandom(MIB) for _ in range(24)]
    digests = [push_blob(primary.url, repo, data) for data in blobs]
    edge = make_edge(primary.url, "--cache-size-mib", "8")
    hot = digests[0]
    with httpx.Client(base_url=edge.url, timeout=30) as client:
        for digest, data in zip(digests, blobs, strict=True):
            assert client.get(f"/v2/{repo}/blobs/{digest}").content == data
            assert client.get(f"/v2/{repo}/blobs/{hot}").status_code == 200  # keep it recently used
            stats = client.get("/edge/stats").json()
            assert stats["cache_bytes"] <= 8 * MIB
        on_disk = sum(p.stat().st_size for p in (edge.cache_dir / "blobs").rglob("*.val"))
        assert on_disk <= 8 * MIB
        assert stats["evictions"] >= 16
        assert client.get(f"/v2/{repo}/blobs/{digests[1]}").content == blobs[1]  # evicted: fetched again
    assert blob_gets(primary, repo, hot) == 1
    assert blob_gets(primary, repo, digests[1]) == 2


def test_blob_cached_for_one_repository_needs_upstream_confirmation_for_another(
    primary: RegistryProcess, make_edge: EdgeFactory
) -> None:
    repo_a, repo_b = unique_repo("scope-a"), unique_repo("scope-b")
    data = os.urandom(200_000)
    digest = push_blob(primary.url, repo_a, data)
    edge = make_edge(primary.url)
    assert httpx.get(f"{edge.url}/v2/{repo_a}/blobs/{digest}").content == data
    refused = httpx.get(f"{edge.url}/v2/{repo_b}/blobs/{digest}")
    assert refused.status_code == 404 and refused.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    assert httpx.head(f"{edge.url}/v2/{repo_b}/blobs/{digest}").status_code == 404

    push_blob(primary.url, repo_b, data)  # now repo B links it upstream
    assert httpx.get(f"{edge.url}/v2/{repo_b}/blobs/{digest}").content == data
    assert blob_gets(primary, repo_b, digest) == 0, "B was confirmed with a HEAD and served from the cache"
    assert blob_gets(primary, repo_a, digest) == 1


def test_ns_mapping_and_unknown_ns_is_a_fast_404(primary: RegistryProcess, make_edge: EdgeFactory) -> None:
    repo = unique_repo("ns")
    digest, doc = _small_image(primary.url, repo, "v1", b"ns")
    edge = make_edge(primary.url, "--upstream-name", "registry.example.com")
    path = f"{edge.url}/v2/{repo}/manifests/v1"
    for ns in (primary.host, "registry.example.com"):
        response = httpx.get(path, params={"ns": ns})
        assert response.status_code == 200 and response.content == doc
        assert response.headers["docker-content-digest"] == digest
    assert httpx.get(path).status_code == 200  # no ns: the single upstream
    started = time.monotonic()
    unknown = httpx.get(path, params={"ns": "docker.io"})
    assert time.monotonic() - started < 0.5
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    assert edge.stats()["unknown_ns"] == 1


def test_tag_served_stale_while_upstream_is_down(
    primary: RegistryProcess, fault_proxy: FaultProxyProcess, make_edge: EdgeFactory
) -> None:
    repo = unique_repo("stale")
    digest, doc = _small_image(primary.url, repo, "v1", b"stale")
    edge = make_edge(fault_proxy.url, "--tag-ttl", "0", "--max-stale", "3")
    path = f"{edge.url}/v2/{repo}/manifests/v1"
    fresh = httpx.get(path)
    assert fresh.status_code == 200 and "x-edge-stale" not in fresh.headers
    tags = httpx.get(f"{edge.url}/v2/{repo}/tags/list")
    assert tags.json() == {"name": repo, "tags": ["v1"]}

    fault_proxy.set(status=503)
    stale = httpx.get(path)
    assert stale.status_code == 200 and stale.headers["x-edge-stale"] == "true" and stale.content == doc
    assert httpx.head(path).headers["x-edge-stale"] == "true"
    by_digest = httpx.get(f"{edge.url}/v2/{repo}/manifests/{digest}")
    assert by_digest.status_code == 200 and "x-edge-stale" not in by_digest.headers
    assert httpx.get(f"{edge.url}/v2/{repo}/tags/list").status_code == 503

    fault_proxy.stop()  # connection refused is "down" too
    assert httpx.get(path).headers["x-edge-stale"] == "true"
    assert edge.stats()["stale_serves"] == 3
    time.sleep(3.1)
    expired = httpx.get(path)
    assert expired.status_code == 503 and expired.json()["errors"][0]["code"] == "UNAVAILABLE"
