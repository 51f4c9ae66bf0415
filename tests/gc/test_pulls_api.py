"""Pull times: recorded for manifest GETs on the primary (batched) and accepted from edges through
``POST /api/v1/pulls`` for non-admin principals, only for repositories they may pull."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx

from tests.api.conftest import CHEAP_ARGON2
from tests.gc.test_gc_server import push_image
from tests.serverproc import RegistryProcess, wait_for_event_subscribers

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def pulls_table(data: Path) -> dict[tuple[str, str], float]:
    conn = sqlite3.connect(data / "registry.db")
    try:
        return {(r, d): at for r, d, at in conn.execute("SELECT repo, digest, at FROM pulls")}
    finally:
        conn.close()


def wait_for(data: Path, key: tuple[str, str], timeout: float = 20.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pulls_table(data).get(key)
        if found is not None:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no pull recorded for {key}")


def test_pull_reports_and_local_pulls(tmp_path: Path) -> None:
    env = {**CHEAP_ARGON2, "REGISTRY__GC__USAGE_FLUSH_SECONDS": "0.2"}
    with RegistryProcess(tmp_path / "data", "--auth", "token", env=env) as proc:
        admin = json.loads((proc.data / "admin-credential.json").read_text())
        with httpx.Client(base_url=proc.url, auth=(admin["username"], admin["password"]), timeout=30) as client:
            assert client.post("/api/v1/namespaces", json={"name": "apps"}).status_code == 201
            assert client.post("/api/v1/namespaces", json={"name": "other"}).status_code == 201
            cred = client.post("/api/v1/service-accounts", json={"name": "edge1"}).json()["credential"]
            binding = {
                "role": "reader",
                "namespace": "apps",
                "subject_kind": "service-account",
                "subject_name": "edge1",
            }
            roles = {r["name"] for r in client.get("/api/v1/roles").json()}
            if "reader" not in roles:
                assert client.post("/api/v1/roles", json={"name": "reader", "permissions": ["pull"]}).status_code == 201
            assert client.post("/api/v1/bindings", json=binding).status_code == 201

            # The registry's own readers of a pushed manifest (the supply-chain subscribers) are not pulls:
            # once they have handled both pushes, a pull of the second image is flushed and the first one
            # still has no pull time.
            digest, _ = push_image(client, "apps/web", "v1", [b"web layer " * 100])
            other, _ = push_image(client, "apps/web", "v2", [b"other layer " * 100])
            wait_for_event_subscribers(proc.data)
            assert client.get("/v2/apps/web/manifests/v2").status_code == 200
            wait_for(proc.data, ("apps/web", other))
            assert ("apps/web", digest) not in pulls_table(proc.data)

            # A local pull is recorded (batched, flushed within the interval).
            before = time.time()
            assert client.get("/v2/apps/web/manifests/v1").status_code == 200
            assert wait_for(proc.data, ("apps/web", digest)) >= before

        edge = (cred["username"], cred["password"])
        future = time.time() + 10_000
        doc = {
            "pulls": [
                {"repository": "apps/app", "digest": D1, "time": 1764370000.0},
                {"repository": "apps/app", "digest": D1, "time": 1764300000.0},  # older: the max is kept
                {"repository": "apps/app", "digest": D2, "time": future},  # clamped to now
                {"repository": "other/app", "digest": D1, "time": 1764370000.0},  # no pull right: ignored
                {"repository": "apps/app", "digest": "nope", "time": 1.0},  # malformed: ignored
                {"repository": "apps/app", "digest": D1},  # no time: ignored
            ]
        }
        r = httpx.post(f"{proc.url}/api/v1/pulls", json=doc, auth=edge)
        assert r.status_code == 200 and r.json() == {"accepted": 3, "ignored": 3}
        assert wait_for(proc.data, ("apps/app", D1)) == 1764370000.0
        clamped = wait_for(proc.data, ("apps/app", D2))
        assert clamped <= time.time() < future
        assert ("other/app", D1) not in pulls_table(proc.data)

        # The same with a Bearer token from /token.
        token = httpx.get(f"{proc.url}/token", params={"scope": "repository:apps/app:pull"}, auth=edge)
        assert token.status_code == 200, token.text
        bearer = {"Authorization": f"Bearer {token.json()['token']}"}
        doc = {"pulls": [{"repository": "apps/bearer", "digest": D1, "time": 1764370001.0}]}
        r = httpx.post(f"{proc.url}/api/v1/pulls", json=doc, headers=bearer)
        assert r.status_code == 200 and r.json() == {"accepted": 1, "ignored": 0}
        assert wait_for(proc.data, ("apps/bearer", D1)) == 1764370001.0

        # Strangers and bad bodies are refused with error envelopes.
        anon = httpx.post(f"{proc.url}/api/v1/pulls", json=doc)
        assert anon.status_code == 401 and anon.json()["errors"][0]["code"] == "UNAUTHORIZED"
        bad = httpx.post(f"{proc.url}/api/v1/pulls", json={"pulls": "x"}, auth=edge)
        assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "INVALID"
        # The edge's account is not an admin: the rest of the management API stays closed to it.
        assert httpx.post(f"{proc.url}/api/v1/gc", json={}, auth=edge).status_code == 403
