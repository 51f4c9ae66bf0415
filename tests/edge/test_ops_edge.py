"""Operating an edge: /metrics (its counters after real pulls), /healthz, /readyz, request id forwarding."""

from __future__ import annotations

import time

import httpx

from tests.edge.conftest import EdgeFactory
from tests.edge.ocipush import push_blob, unique_repo
from tests.server.test_ops import samples, value
from tests.serverproc import RegistryProcess


def test_edge_metrics_after_a_miss_and_a_hit(primary: RegistryProcess, make_edge: EdgeFactory) -> None:
    edge = make_edge(primary.url)
    repo = unique_repo("metrics")
    data = b"edge metrics " * 4096
    digest = push_blob(primary.url, repo, data)
    with httpx.Client(base_url=edge.url, timeout=60) as client:
        for _ in range(2):
            assert client.get(f"/v2/{repo}/blobs/{digest}").content == data
        deadline = time.monotonic() + 30
        while True:  # the fill commits to the cache just after the first answer's last byte
            response = client.get("/metrics")
            assert response.status_code == 200
            found = samples(response.text)
            if value(found, "edge_fills_total") == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert value(found, "edge_misses_total") == 1
    # the second GET is a hit, or joins the fill if that was still committing
    assert value(found, "edge_hits_total") + value(found, "edge_coalesced_total") == 1
    assert value(found, "edge_upstream_bytes_total") >= len(data)
    assert value(found, "edge_cache_bytes") >= len(data)
    assert value(found, "edge_cache_blobs") == 1
    route = "/v2/{name}/blobs/{digest}"
    assert value(found, "edge_http_requests_total", method="GET", route=route, status="200") == 2
    assert value(found, "edge_http_sent_bytes_total", route=route) >= 2 * len(data)
    assert value(found, "edge_http_request_duration_seconds_count", method="GET", route=route) == 2


def test_edge_request_id_reaches_the_primary(primary: RegistryProcess, make_edge: EdgeFactory) -> None:
    edge = make_edge(primary.url)
    repo = unique_repo("rid")
    digest = push_blob(primary.url, repo, b"request id blob")
    response = httpx.get(f"{edge.url}/v2/{repo}/blobs/{digest}", headers={"X-Request-Id": "edge-rid-42"}, timeout=60)
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "edge-rid-42"
    lines = [line for line in primary.log_text().splitlines() if f"/v2/{repo}/blobs/{digest}" in line]
    assert any("rid=edge-rid-42" in line for line in lines), lines


def test_edge_ready_while_the_upstream_is_down(make_edge: EdgeFactory) -> None:
    edge = make_edge("http://127.0.0.1:9")  # discard port: nothing listens
    assert httpx.get(f"{edge.url}/healthz", timeout=10).json() == {"status": "ok"}
    ready = httpx.get(f"{edge.url}/readyz", timeout=30)
    assert ready.status_code == 200
    assert ready.json() == {"cache": "ok", "index": "ok", "upstream": "unreachable", "status": "ready"}
