"""Operating the primary: /metrics after real traffic, /healthz and /readyz (including not ready), request ids."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import CHEAP_ARGON2
from tests.edge.ocipush import push_blob, sha256
from tests.serverproc import RegistryProcess


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, keyed by (name, labels)."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    with RegistryProcess(tmp_path / "data", env={"REGISTRY__LOG__ACCESS_LOG": "true"}) as proc:
        yield proc


def test_metrics_count_routes_statuses_bytes_and_latency(registry: RegistryProcess) -> None:
    data = b"metrics blob " * 1000
    digest = push_blob(registry.url, "ops/metrics", data)
    with httpx.Client(base_url=registry.url, timeout=30) as client:
        assert client.get(f"/v2/ops/metrics/blobs/{digest}").content == data
        assert client.get(f"/v2/ops/metrics/blobs/{sha256(b'absent')}").status_code == 404
        started = client.post("/v2/ops/metrics/blobs/uploads/")
        assert started.status_code == 202
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    blob_route = "/v2/{name}/blobs/{digest}"
    assert value(found, "registry_http_requests_total", method="GET", route=blob_route, status="200") == 1
    assert value(found, "registry_http_requests_total", method="GET", route=blob_route, status="404") == 1
    upload_route = "/v2/{name}/blobs/uploads"
    assert value(found, "registry_http_requests_total", method="POST", route=upload_route, status="201") == 1
    assert value(found, "registry_http_received_bytes_total", route=upload_route) >= len(data)
    assert value(found, "registry_http_sent_bytes_total", route=blob_route) >= len(data)
    assert value(found, "registry_http_request_duration_seconds_count", method="GET", route=blob_route) == 2
    assert value(found, "registry_upload_sessions") == 1  # the POST above left one session open
    assert not any("ops/metrics" in str(key) for key in found), "raw paths must never become labels"


def test_auth_outcomes_are_counted(tmp_path: Path) -> None:
    with RegistryProcess(tmp_path / "data", "--auth", "token", env=CHEAP_ARGON2) as proc:
        assert httpx.get(f"{proc.url}/v2/", timeout=10).status_code == 401
        denied = httpx.get(f"{proc.url}/token", auth=("nobody", "wrong-password"), timeout=30)
        assert denied.status_code == 401
        found = samples(httpx.get(f"{proc.url}/metrics", timeout=10).text)
        log = proc.log_text()
    assert value(found, "registry_auth_outcomes_total", outcome="challenged") == 1
    assert value(found, "registry_auth_outcomes_total", outcome="token_denied") == 1
    assert "wrong-password" not in log


def test_health_and_readiness(registry: RegistryProcess) -> None:
    assert httpx.get(f"{registry.url}/healthz", timeout=10).json() == {"status": "ok"}
    assert httpx.get(f"{registry.url}/readyz", timeout=10).status_code == 200
    shutil.rmtree(registry.data / "uploads")  # storage no longer usable
    not_ready = httpx.get(f"{registry.url}/readyz", timeout=10)
    assert not_ready.status_code == 503
    assert not_ready.json() == {"status": "not ready"}
    assert httpx.get(f"{registry.url}/healthz", timeout=10).status_code == 200  # alive, just not ready


def test_request_id_is_echoed_logged_or_generated(registry: RegistryProcess) -> None:
    given = httpx.get(f"{registry.url}/v2/", headers={"X-Request-Id": "req-abc-123"}, timeout=10)
    assert given.headers["x-request-id"] == "req-abc-123"
    generated = httpx.get(f"{registry.url}/v2/", timeout=10).headers["x-request-id"]
    assert len(generated) == 32 and generated != "req-abc-123"
    assert "rid=req-abc-123" in registry.log_text()


def test_json_logs_have_a_shape_and_no_secrets(tmp_path: Path) -> None:
    env = {**CHEAP_ARGON2, "REGISTRY__LOG__FORMAT": "json", "REGISTRY__LOG__ACCESS_LOG": "true"}
    with RegistryProcess(tmp_path / "data", "--auth", "token", env=env) as proc:
        admin = json.loads((proc.data / "admin-credential.json").read_text())
        token = httpx.get(f"{proc.url}/token", auth=(admin["username"], admin["password"]), timeout=30)
        assert token.status_code == 200
        bearer = token.json()["token"]
        headers = {"Authorization": f"Bearer {bearer}", "X-Request-Id": "json-log-1"}
        assert httpx.get(f"{proc.url}/v2/", headers=headers, timeout=10).status_code == 200
        assert httpx.get(f"{proc.url}/token", auth=("nobody", "s3cret-wrong"), timeout=30).status_code == 401
        log = proc.log_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert len(lines) >= 4 and all({"ts", "level", "logger", "msg"} <= line.keys() for line in lines)
    access = [line for line in lines if line["logger"] == "registry.access"]
    # hypercorn may log a request twice when the client closes right after the answer (once with status "-"
    # from the stream closing, once with the real status): look for the completed one.
    catalog = [line for line in access if line["path"] == "/v2/" and line["status"] != "-"]
    assert [(line["status"], line["request_id"]) for line in catalog] == [("200", "json-log-1")]
    assert all(line["request_id"] for line in access)
    for secret in (admin["password"], bearer, "s3cret-wrong"):
        assert secret not in log
