"""Pull statistics and prefetch authorization on an identity-mode edge (mode: identity; the edge's account
``edge-node`` may pull team-a only) in front of a primary with auth on.

Pulls served from the edge's cache reach the primary's pull table through ``POST /api/v1/pulls``; a prefetch is
allowed exactly where a pull is: anonymous callers cannot make the edge fetch a namespace its account cannot pull.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import httpx

from tests.edge.authprimary import AuthPrimary, auth_primary
from tests.edge.conftest import EdgeFactory
from tests.imagebuild import build_image
from tests.serverproc import BIN

__all__ = ["auth_primary"]


def pull_time(data: Path, repo: str, digest: str) -> float | None:
    conn = sqlite3.connect(data / "registry.db")
    try:
        row = conn.execute("SELECT at FROM pulls WHERE repo = ? AND digest = ?", (repo, digest)).fetchone()
        return None if row is None else float(row[0])
    finally:
        conn.close()


def test_cache_hits_are_reported_and_prefetch_is_authorized_like_a_pull(
    auth_primary: AuthPrimary, make_edge: EdgeFactory, tmp_path: Path
) -> None:
    image = build_image(tmp_path / "layout", text="pull stats\n", tag="v1")
    repo = f"team-a/stats-{uuid.uuid4().hex[:8]}"
    forbidden = f"team-b/stats-{uuid.uuid4().hex[:8]}"
    auth_primary.push_image(repo, image, "v1")
    auth_primary.push_image(forbidden, image, "v1")
    password = tmp_path / "edge-password"
    password.write_text(auth_primary.edge_node.password)
    edge = make_edge(
        auth_primary.url,
        "--auth-mode",
        "identity",
        "--identity-username",
        auth_primary.edge_node.username,
        "--identity-password-file",
        str(password),
        "--pull-report-interval",
        "0.5",
    )
    digest = image.manifest_digest
    with httpx.Client(base_url=edge.url, timeout=60) as client:
        assert client.get(f"/v2/{repo}/manifests/v1").status_code == 200  # a miss: the primary sees this one
        time.sleep(1.5)
        served_from_cache = time.time()
        hit = client.get(f"/v2/{repo}/manifests/{digest}")  # by digest: immutable, no upstream request
        assert hit.status_code == 200
        # Prefetch runs as a pull: team-b is not pullable by the edge's account, so nothing is fetched.
        refused = client.post("/edge/prefetch", json={"repository": forbidden, "reference": "v1"})
        assert refused.status_code in (401, 403), refused.text
        assert refused.json()["errors"][0]["code"] in ("UNAUTHORIZED", "DENIED")
    assert edge.stats()["fills"] == 0
    deadline = time.monotonic() + 60  # reported every 0.5 s, written by the primary every 0.5 s
    while time.monotonic() < deadline:
        recorded = pull_time(auth_primary.proc.data, repo, digest)
        if recorded is not None and recorded >= served_from_cache:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the cache hit was not reported (last pull time {recorded}, edge {edge.stats()})")
    stats = edge.stats()
    assert stats["pull_reports_sent"] >= 1 and stats["pull_reports_dropped"] == 0


def test_passthrough_prefetch_uses_the_callers_credentials(
    auth_primary: AuthPrimary, make_edge: EdgeFactory, tmp_path: Path
) -> None:
    """Mode: passthrough. ``edge prefetch --username/--password-file`` sends the reader's Basic credential; the
    edge checks it and forwards it: team-a is prefetched, team-b (no pull for reader) and anonymous are refused."""
    image = build_image(tmp_path / "layout", text="passthrough prefetch\n", tag="v1")
    repo = f"team-a/pre-{uuid.uuid4().hex[:8]}"
    forbidden = f"team-b/pre-{uuid.uuid4().hex[:8]}"
    auth_primary.push_image(repo, image, "v1")
    auth_primary.push_image(forbidden, image, "v1")
    edge = make_edge(auth_primary.url, "--auth-mode", "passthrough")
    password = tmp_path / "reader-password"
    password.write_text(auth_primary.reader.password)
    user = ["--username", auth_primary.reader.username, "--password-file", str(password)]

    def prefetch(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(BIN / "edge"), "prefetch", "--edge-url", edge.url, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    anonymous = prefetch(f"{repo}:v1")
    assert anonymous.returncode == 1 and "UNAUTHORIZED" in anonymous.stdout, anonymous.stdout
    refused = prefetch(*user, f"{forbidden}:v1")
    assert refused.returncode == 1 and "failed" in refused.stdout, refused.stdout
    assert edge.stats()["fills"] == 0
    done = prefetch(*user, f"{repo}:v1")
    assert done.returncode == 0 and "done" in done.stdout, done.stdout + done.stderr
    assert edge.stats()["fills"] == 1 + len(image.layers)
