"""GC results on the primary's /metrics: runs by result, objects deleted, bytes freed, duration, last success."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from prometheus_client import generate_latest

from registry.gc.collector import GcReport, GcRun
from registry.metrics import RegistryMetrics
from tests.api.conftest import CHEAP_ARGON2
from tests.gc.test_gc_server import push_image
from tests.server.test_ops import samples, value
from tests.serverproc import RegistryProcess


def test_metrics_after_a_dry_run_and_a_real_gc(tmp_path: Path) -> None:
    with RegistryProcess(tmp_path / "data", "--auth", "token", env=CHEAP_ARGON2) as proc:
        admin = json.loads((proc.data / "admin-credential.json").read_text())
        with httpx.Client(base_url=proc.url, auth=(admin["username"], admin["password"]), timeout=30) as client:
            before = samples(client.get("/metrics").text)
            assert client.post("/api/v1/namespaces", json={"name": "apps"}).status_code == 201
            digest, _ = push_image(client, "apps/gone", "v1", [b"gc metrics layer " * 500])
            assert client.delete(f"/v2/apps/gone/manifests/{digest}").status_code == 202
            assert client.post("/api/v1/gc", json={"dry_run": True, "grace_period_seconds": 0}).status_code == 200
            started = time.time()
            report = client.post("/api/v1/gc", json={"grace_period_seconds": 0}).json()
            found = samples(client.get("/metrics").text)
    # registered before any run, so a dashboard sees zeros rather than absent series
    assert value(before, "registry_gc_runs_total", result="success") == 0
    assert value(before, "registry_gc_last_success_timestamp_seconds") == 0
    assert len(report["blobs"]) == 2 and len(report["manifests"]) == 1  # config + layer, the image manifest
    assert value(found, "registry_gc_runs_total", result="dry_run") == 1
    assert value(found, "registry_gc_runs_total", result="success") == 1
    assert value(found, "registry_gc_runs_total", result="failure") == 0
    assert value(found, "registry_gc_deleted_total", kind="blob") == 2
    assert value(found, "registry_gc_deleted_total", kind="manifest") == 1
    assert value(found, "registry_gc_deleted_total", kind="referrer") == 0
    assert value(found, "registry_gc_freed_bytes_total") == report["bytes_freed"] > 0
    assert value(found, "registry_gc_duration_seconds_count") == 2
    assert value(found, "registry_gc_duration_seconds_sum") > 0
    assert started - 5 <= value(found, "registry_gc_last_success_timestamp_seconds") <= time.time() + 5


def test_a_failed_run_is_counted_and_keeps_the_last_success(tmp_path: Path) -> None:
    metrics = RegistryMetrics(tmp_path)
    ok = GcReport(dry_run=False, grace_seconds=0, blobs=[{"digest": "sha256:x", "size": 10}])
    metrics.observe_gc(GcRun(ok, 0.5, False, 1000.0))
    metrics.observe_gc(GcRun(None, 0.1, False, 2000.0))
    found = samples(generate_latest(metrics.registry).decode())
    assert value(found, "registry_gc_runs_total", result="success") == 1
    assert value(found, "registry_gc_runs_total", result="failure") == 1
    assert value(found, "registry_gc_deleted_total", kind="blob") == 1
    assert value(found, "registry_gc_freed_bytes_total") == 10
    assert value(found, "registry_gc_last_success_timestamp_seconds") == 1000.0
    assert value(found, "registry_gc_duration_seconds_count") == 2
