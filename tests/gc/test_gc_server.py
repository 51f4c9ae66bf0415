"""Online GC against a real server: shared layers survive deleting one of two images, orphaned blobs go
after ``registry gc`` while the server keeps serving, the management API runs it, and the audit log of it
all verifies (and stops verifying once tampered with)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
from pathlib import Path

import httpx

from tests.api.conftest import CHEAP_ARGON2
from tests.serverproc import BIN, RegistryProcess


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    digest = _digest(data)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    return digest


def push_image(client: httpx.Client, repo: str, tag: str, layers: list[bytes]) -> tuple[str, dict[str, str]]:
    config = json.dumps({"architecture": "amd64", "os": "linux", "image": f"{repo}:{tag}"}).encode()
    blobs = {"config": push_blob(client, repo, config)}
    descriptors = []
    for n, layer in enumerate(layers):
        blobs[f"layer{n}"] = push_blob(client, repo, layer)
        descriptors.append(
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _digest(layer), "size": len(layer)}
        )
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": blobs["config"],
                "size": len(config),
            },
            "layers": descriptors,
        }
    ).encode()
    r = client.put(
        f"/v2/{repo}/manifests/{tag}",
        content=manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert r.status_code == 201, r.text
    return r.headers["Docker-Content-Digest"], blobs


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "registry"), *args], capture_output=True, text=True, timeout=120)


def blob_file(data: Path, digest: str) -> Path:
    hexd = digest.split(":", 1)[1]
    return data / "blobs" / "sha256" / hexd[:2] / hexd


def test_shared_layers_survive_and_orphans_go_while_serving(tmp_path: Path) -> None:
    shared, only_a, only_b = b"shared layer " * 1000, b"layer only in a " * 700, b"layer only in b " * 500
    with RegistryProcess(tmp_path / "data") as proc, httpx.Client(base_url=proc.url, timeout=30) as client:
        digest_a, blobs_a = push_image(client, "apps/a", "v1", [shared, only_a])
        digest_b, _ = push_image(client, "apps/b", "v1", [shared, only_b])
        # Deleting image a unlinks its manifest; its blobs are now unreferenced.
        assert client.delete(f"/v2/apps/a/manifests/{digest_a}").status_code == 202

        # A dry run reports and changes nothing; the default 2 h grace protects everything just pushed.
        assert json.loads(run_cli("gc", "--data", str(proc.data), "--json").stdout)["blobs"] == []
        dry = run_cli("gc", "--data", str(proc.data), "--dry-run", "--grace-period", "0", "--json")
        assert dry.returncode == 0, dry.stderr
        planned = {b["digest"] for b in json.loads(dry.stdout)["blobs"]}
        assert planned == {blobs_a["config"], _digest(only_a)}
        assert blob_file(proc.data, _digest(only_a)).exists()

        result = run_cli("gc", "--data", str(proc.data), "--grace-period", "0", "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert {b["digest"] for b in report["blobs"]} == planned
        assert report["bytes_freed"] >= len(only_a) and not report["dry_run"]

        # The server kept serving throughout: image b is intact, byte for byte.
        assert client.get(f"/v2/apps/b/manifests/{digest_b}").status_code == 200
        for data in (shared, only_b):
            got = client.get(f"/v2/apps/b/blobs/{_digest(data)}")
            assert got.status_code == 200 and got.content == data
        # Image a's shared layer is still linked in a (membership rows stay while the blob lives).
        assert client.head(f"/v2/apps/a/blobs/{_digest(shared)}").status_code == 200
        # The orphaned blobs are gone from metadata and from disk.
        gone = client.get(f"/v2/apps/a/blobs/{_digest(only_a)}")
        assert gone.status_code == 404 and gone.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
        assert not blob_file(proc.data, _digest(only_a)).exists()
        assert not blob_file(proc.data, blobs_a["config"]).exists()
        assert blob_file(proc.data, _digest(shared)).exists()
        # A second run has nothing left to do; the same digest can be pushed again afterwards.
        again = json.loads(run_cli("gc", "--data", str(proc.data), "--grace-period", "0", "--json").stdout)
        assert again["blobs"] == [] and again["bytes_freed"] == 0
        push_blob(client, "apps/a", only_a)
        assert client.get(f"/v2/apps/a/blobs/{_digest(only_a)}").content == only_a

    # Every GC deletion was audited, and the untouched log verifies (the server wrote a final checkpoint).
    verify = run_cli("audit", "verify", "--data", str(proc.data))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    exported = run_cli("audit", "export", "--data", str(proc.data), "--event", "gc.")
    events = [json.loads(line) for line in exported.stdout.splitlines()]
    assert {e["resource"] for e in events if e["event"] == "gc.blob.delete"} == planned
    # Tampering with one record is detected.
    conn = sqlite3.connect(proc.data / "registry.db")
    conn.execute("UPDATE audit SET actor = 'someone-else' WHERE event = 'gc.blob.delete'")
    conn.commit()
    conn.close()
    tampered = run_cli("audit", "verify", "--data", str(proc.data))
    assert tampered.returncode == 1 and "modified" in tampered.stdout


def test_management_api_runs_gc_and_queries_audit(tmp_path: Path) -> None:
    with RegistryProcess(tmp_path / "data", "--auth", "token", env=CHEAP_ARGON2) as proc:
        admin = json.loads((proc.data / "admin-credential.json").read_text())
        auth = (admin["username"], admin["password"])
        with httpx.Client(base_url=proc.url, auth=auth, timeout=30) as client:
            assert client.post("/api/v1/namespaces", json={"name": "apps"}).status_code == 201
            digest, blobs = push_image(client, "apps/x", "v1", [b"x layer " * 300])
            assert client.delete(f"/v2/apps/x/manifests/{digest}").status_code == 202
            dry = client.post("/api/v1/gc", json={"dry_run": True, "grace_period_seconds": 0})
            assert dry.status_code == 200 and dry.json()["dry_run"] is True
            assert {b["digest"] for b in dry.json()["blobs"]} == set(blobs.values())
            real = client.post("/api/v1/gc", json={"grace_period_seconds": 0}).json()
            assert {b["digest"] for b in real["blobs"]} == set(blobs.values())
            assert real["bytes_freed"] == sum(b["size"] for b in dry.json()["blobs"]) + sum(
                m["size"] for m in dry.json()["manifests"]
            )
            bad = client.post("/api/v1/gc", json={"grace_period_seconds": "soon"})
            assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "INVALID"
            records = client.get("/api/v1/audit", params={"event": "gc.blob.delete"}).json()
            assert {r["resource"] for r in records} == set(blobs.values())
            assert all(r["actor"] == f"user:{admin['username']}" or r["actor"].startswith("user:") for r in records)
            assert client.get("/api/v1/audit", params={"outcome": "nope"}).json() == []
            # Pushes and deletes are audited with actor, credential, source, user agent and request id.
            pushes = client.get("/api/v1/audit", params={"event": "manifest.push"}).json()
            assert pushes[0]["resource"] == "apps/x:v1" and pushes[0]["actor"].startswith("user:")
            assert pushes[0]["credential"] == admin["username"] and pushes[0]["source"] == "127.0.0.1"
            assert pushes[0]["user_agent"].startswith("python-httpx") and pushes[0]["request_id"]
            assert pushes[0]["detail"]["digest"] == digest
            deletes = client.get("/api/v1/audit", params={"event": "manifest.delete"}).json()
            assert deletes[0]["resource"] == f"apps/x@{digest}"
            bob = client.post("/api/v1/users", json={"name": "bob"}).json()["credential"]
        denied = httpx.post(
            f"{proc.url}/v2/apps/x/blobs/uploads/",
            auth=(bob["username"], bob["password"]),
            headers={"X-Request-ID": "req-42"},
        )
        assert denied.status_code == 403
        with httpx.Client(base_url=proc.url, auth=auth, timeout=30) as client:
            refused = client.get("/api/v1/audit", params={"event": "authz.denied"}).json()
            assert refused[0]["outcome"] == "denied" and refused[0]["request_id"] == "req-42"
            assert refused[0]["credential"] == bob["username"] and refused[0]["resource"] == "apps/x"
        assert httpx.post(f"{proc.url}/api/v1/gc", json={}).status_code == 401
