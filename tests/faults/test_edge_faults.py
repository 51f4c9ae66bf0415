"""Faults between a real edge and its upstream, injected by ``tests.edge.faultproxy``: the upstream answering
429, 500, 502 and 503, answering too slowly, resetting mid-body, serving corrupted bytes, and gone altogether.

For every fault: content already in the cache is served (tags stale, with ``X-Edge-Stale``), content that is
not gets an OCI error envelope — or, once a streamed body has started, an aborted connection the client sees —
and nothing wrong is cached (the same blob is served intact once the fault is gone).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from tests.api.ocihelpers import OCI_MANIFEST, digest, image_manifest, push_blob
from tests.edge.conftest import EdgeFactory, FaultProxyProcess
from tests.edge.edgeproc import EdgeProcess
from tests.faults.conftest import oci_error, survived, unique
from tests.serverproc import RegistryProcess

pytestmark = pytest.mark.e2e

METADATA_TIMEOUT = 1.0
READ_TIMEOUT = 2.0
FAULT_STATUSES = (429, 500, 502, 503)


class World:
    """An image on the primary, an edge in front of the fault proxy, the manifest and one layer cached."""

    def __init__(self, primary: RegistryProcess, proxy: FaultProxyProcess, edge: EdgeProcess) -> None:
        self.proxy, self.edge = proxy, edge
        self.repo = unique("faults")
        self.config = b'{"architecture":"amd64","os":"linux"}'
        self.cached = os.urandom(64 * 1024)
        self.cold = [os.urandom(1024 * 1024) for _ in range(8)]  # one fresh blob per fault that needs one
        with httpx.Client(base_url=primary.url, timeout=60) as client:
            for data in (self.config, self.cached, *self.cold):
                push_blob(client, self.repo, data)
            self.manifest = image_manifest(self.config, [self.cached, *self.cold])
            put = client.put(
                f"/v2/{self.repo}/manifests/v1", content=self.manifest, headers={"Content-Type": OCI_MANIFEST}
            )
            assert put.status_code == 201, put.text
        self.client = httpx.Client(base_url=edge.url, timeout=60)
        assert self.get_tag().status_code == 200
        assert self.get_blob(self.cached).content == self.cached
        self.settle()

    def get_tag(self) -> httpx.Response:
        return self.client.get(f"/v2/{self.repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})

    def get_blob(self, data: bytes) -> httpx.Response:
        return self.client.get(f"/v2/{self.repo}/blobs/{digest(data)}")

    def settle(self) -> None:
        deadline = time.monotonic() + 30
        while self.edge.stats()["fills_in_flight"] and time.monotonic() < deadline:
            time.sleep(0.05)

    def cache_still_serves(self) -> None:
        """The cached tag (stale) and the cached blob are served while the fault lasts."""
        tag = self.get_tag()
        assert tag.status_code == 200 and tag.content == self.manifest, tag.text
        assert tag.headers.get("x-edge-stale") == "true"
        blob = self.get_blob(self.cached)
        assert blob.status_code == 200 and blob.content == self.cached

    def intact_after(self, data: bytes) -> None:
        """Once the fault is gone the blob is served intact (nothing wrong was cached)."""
        self.settle()
        self.proxy.set(status=0, delay=0, corrupt=[], reset=[])
        again = self.get_blob(data)
        assert again.status_code == 200 and again.content == data


def _aborted_or_error(world: World, data: bytes) -> str:
    """GET a cold blob under a fault: an error envelope or a body cut short, never 200 with wrong bytes."""
    try:
        response = world.get_blob(data)
    except httpx.TransportError as exc:  # the edge dropped the connection after the headers
        return f"aborted ({type(exc).__name__})"
    if response.status_code == 200:
        assert response.content == data, "a 200 with wrong bytes"
        return "served"
    status, code = oci_error(response)
    return f"{status} {code}"


@pytest.fixture
def world(tmp_path: Path, primary: RegistryProcess, fault_proxy: FaultProxyProcess, make_edge: EdgeFactory) -> World:
    config = tmp_path / "edge.toml"
    config.write_text(
        f"metadata_timeout = {METADATA_TIMEOUT}\nread_timeout = {READ_TIMEOUT}\ntag_ttl = 0.0\nconnect_timeout = 1.0\n"
    )
    edge = make_edge(fault_proxy.url, "--config", str(config))
    return World(primary, fault_proxy, edge)


def test_upstream_errors_slowness_resets_and_corruption(world: World) -> None:
    cold = iter(world.cold)
    for status in FAULT_STATUSES:
        world.proxy.set(status=status)
        world.cache_still_serves()
        data = next(cold)
        outcome = _aborted_or_error(world, data)
        assert outcome == "503 UNAVAILABLE", (status, outcome)
        tags = world.client.get(f"/v2/{world.repo}/tags/list")
        assert oci_error(tags) == (503, "UNAVAILABLE"), (status, tags.text)
        world.intact_after(data)
        survived(f"edge: upstream answers {status}")

    world.proxy.set(delay=METADATA_TIMEOUT + READ_TIMEOUT + 1)
    started = time.monotonic()
    world.cache_still_serves()
    assert time.monotonic() - started < METADATA_TIMEOUT + 3, "a slow upstream delays cached answers at most once"
    data = next(cold)
    started = time.monotonic()
    assert _aborted_or_error(world, data) == "503 UNAVAILABLE"
    assert time.monotonic() - started < READ_TIMEOUT + METADATA_TIMEOUT + 3
    world.intact_after(data)
    survived("edge: upstream slower than the timeouts")

    for fault in ("reset", "corrupt"):
        data = next(cold)
        world.proxy.set(**{fault: [digest(data)]})
        outcome = _aborted_or_error(world, data)
        assert outcome.startswith("aborted") or outcome.startswith("503"), (fault, outcome)
        blob = world.get_blob(world.cached)
        assert blob.status_code == 200 and blob.content == world.cached
        world.intact_after(data)
        survived(f"edge: upstream {fault} mid-body ({outcome})")
    assert world.edge.stats()["fill_failures"] >= 2

    world.proxy.stop()  # connection refused
    world.cache_still_serves()
    down = _aborted_or_error(world, next(cold))
    assert down == "503 UNAVAILABLE", down
    survived("edge: upstream down")
    world.client.close()
