"""Pushes of the same layers run against a real server while the management API collects garbage with no
grace period in a loop: every push either completes with every blob intact, or fails cleanly with an OCI
error (503 UNAVAILABLE for an upload of a digest being collected, 400 MANIFEST_BLOB_UNKNOWN for a manifest
whose fresh blobs were collected first). Afterwards fsck finds no metadata pointing at missing content."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import httpx

from tests.api.conftest import CHEAP_ARGON2
from tests.gc.test_gc_server import run_cli
from tests.serverproc import RegistryProcess

LAYER = b"layer shared by every push " * 20000
CLEAN_FAILURES = {(503, "UNAVAILABLE"), (400, "MANIFEST_BLOB_UNKNOWN")}


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def try_push(client: httpx.Client, n: int) -> tuple[str, str | None]:
    """Push image ``it-n``. Returns ("ok", digest) or ("failed", "<status> <code>")."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": n}).encode()
    for data in (config, LAYER):
        r = client.post("/v2/apps/race/blobs/uploads/", params={"digest": _digest(data)}, content=data)
        if r.status_code != 201:
            return "failed", f"{r.status_code} {r.json()['errors'][0]['code']}"
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _digest(config),
            "size": len(config),
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _digest(LAYER), "size": len(LAYER)}
        ],
    }
    r = client.put(
        f"/v2/apps/race/manifests/it-{n}",
        content=json.dumps(manifest).encode(),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    if r.status_code != 201:
        return "failed", f"{r.status_code} {r.json()['errors'][0]['code']}"
    return "ok", _digest(config)


def test_pushes_during_continuous_gc_complete_intact_or_fail_cleanly(tmp_path: Path) -> None:
    with RegistryProcess(tmp_path / "data", "--auth", "token", env=CHEAP_ARGON2) as proc:
        admin = json.loads((proc.data / "admin-credential.json").read_text())
        auth = (admin["username"], admin["password"])
        stop = threading.Event()
        collected: list[int] = []

        def collect() -> None:
            with httpx.Client(base_url=proc.url, auth=auth, timeout=60) as gc:
                while not stop.is_set():
                    # Alternate no grace (collect what was just uploaded) with a short one (let pushes land).
                    r = gc.post("/api/v1/gc", json={"grace_period_seconds": 0.0 if len(collected) % 3 == 0 else 0.5})
                    assert r.status_code == 200, r.text
                    collected.append(len(r.json()["blobs"]))
                    time.sleep(0.02)

        with httpx.Client(base_url=proc.url, auth=auth, timeout=60) as client:
            assert client.post("/api/v1/namespaces", json={"name": "apps"}).status_code == 201
            collector = threading.Thread(target=collect)
            collector.start()
            outcomes = []
            try:
                for n in range(40):
                    outcome = try_push(client, n)
                    outcomes.append((n, *outcome))
                    if outcome[0] == "ok":  # verify now, then unlink so the shared layer is collectable again
                        for digest in (outcome[1], _digest(LAYER)):
                            got = client.get(f"/v2/apps/race/blobs/{digest}")
                            assert got.status_code == 200 and _digest(got.content) == digest
                        if n % 2:
                            assert client.delete(f"/v2/apps/race/manifests/it-{n}").status_code == 202
            finally:
                stop.set()
                collector.join(60)
            failures = {o[2] for o in outcomes if o[1] == "failed"}
            assert all((int(f.split()[0]), f.split()[1]) in CLEAN_FAILURES for f in failures), failures
            succeeded = [o for o in outcomes if o[1] == "ok"]
            assert succeeded, outcomes
            assert sum(collected) > 0  # GC really removed things while pushes ran
            # One more collection after the pushes: what a successful push references must survive it.
            assert client.post("/api/v1/gc", json={"grace_period_seconds": 0}).status_code == 200
            for n, _, config in (o for o in succeeded if o[0] % 2 == 0):
                assert client.get(f"/v2/apps/race/manifests/it-{n}").status_code == 200
                got = client.get(f"/v2/apps/race/blobs/{config}")
                assert got.status_code == 200 and _digest(got.content) == config
            layer = client.get(f"/v2/apps/race/blobs/{_digest(LAYER)}")
            assert layer.status_code == 200 and layer.content == LAYER
        fsck = run_cli("fsck", "--data", str(proc.data))
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
