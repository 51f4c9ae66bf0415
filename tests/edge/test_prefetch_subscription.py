"""Prefetch (``edge prefetch`` CLI → ``POST /edge/prefetch``) and subscriptions (the primary's event feed), with
real primaries, real edges and skopeo on loopback. Auth mode of every test: none (an open primary), so the
feed and the prefetch endpoint are open; prefetch authorization is covered in ``test_pull_stats.py``."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from tests.e2e.clients import Skopeo
from tests.edge.conftest import EdgeFactory
from tests.edge.edgeproc import EdgeProcess
from tests.edge.ocipush import push_image
from tests.imagebuild import build_image, build_index
from tests.serverproc import BIN, RegistryProcess


def wait_until(check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_prefetch_index_then_pull_with_the_primary_stopped(tmp_path: Path, make_edge: EdgeFactory) -> None:
    skopeo = Skopeo(tmp_path / "skopeo")
    index = build_index(tmp_path / "layout", text="prefetched", tag="v1")
    with RegistryProcess(tmp_path / "primary", "--auth", "none") as primary:
        skopeo.copy(index.ref, f"docker://{primary.host}/apps/multi:v1", "--all")
        edge = make_edge(primary.url)
        cli = subprocess.run(
            [BIN / "edge", "prefetch", "--edge-url", edge.url, f"{primary.host}/apps/multi:v1"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert f"done, {index.index_digest}: 3 manifest(s), 4 blob(s)" in cli.stdout, cli.stdout
        stats = edge.stats()
        assert stats["fills"] == 4 and stats["cache_blobs"] == 4
        # A second prefetch finds everything cached (nothing fetched again).
        again = httpx.post(f"{edge.url}/edge/prefetch", json={"repository": "apps/multi", "reference": "v1"})
        assert again.status_code == 200 and '"blobs_cached": 4' in again.text.splitlines()[-1]
        missing = httpx.post(f"{edge.url}/edge/prefetch", json={"repository": "apps/nothing", "reference": "v1"})
        assert missing.status_code == 404, missing.text
    # The primary is stopped: every platform still pulls from the edge's cache.
    out = tmp_path / "out"
    skopeo.copy(f"docker://{edge.host}/apps/multi:v1", f"oci:{out}:v1", "--all")
    for image in index.images.values():
        for digest in [image.config_digest, *image.layer_digests]:
            assert (out / "blobs" / "sha256" / digest.removeprefix("sha256:")).is_file()
    assert edge.stats()["fills"] == 4


def test_subscription_prefetches_pushes_and_resumes_after_restart(tmp_path: Path) -> None:
    skopeo = Skopeo(tmp_path / "skopeo")
    edge_base = tmp_path / "edge"
    with RegistryProcess(tmp_path / "primary", "--auth", "none") as primary:
        edge = EdgeProcess(edge_base, primary.url, "--subscribe-namespace", "apps").start()
        try:
            cursor_file = edge.cache_dir / "feed-cursor.json"
            wait_until(cursor_file.exists)  # the subscriber stands at the feed's head
            push_image(primary.url, "other/skipped", build_image(tmp_path / "o", text="not subscribed\n"), "v1")
            image = build_image(tmp_path / "a", text="subscribed\n", tag="v1")
            push_image(primary.url, "apps/web", image, "v1")
            wait_until(lambda: edge.stats()["feed_prefetches"] >= 1)
            stats = edge.stats()
            assert stats["feed_prefetches"] == 1 and stats["fills"] == 1 + len(image.layers)
        finally:
            edge.stop()
        # While the edge is down, another push; the restarted edge resumes from its stored cursor.
        image2 = build_image(tmp_path / "b", text="pushed while the edge was down\n", tag="v2")
        push_image(primary.url, "apps/web", image2, "v2")
        edge = EdgeProcess(edge_base, primary.url, "--subscribe-namespace", "apps").start()
        try:
            wait_until(lambda: edge.stats()["feed_prefetches"] >= 1)
        except AssertionError:
            edge.stop()
            raise
    try:
        # The primary is stopped; no client ever pulled through the edge: both tags come from the cache.
        for tag in ("v1", "v2"):
            skopeo.copy(f"docker://{edge.host}/apps/web:{tag}", f"oci:{tmp_path / 'out'}:{tag}")
        missing = httpx.get(f"{edge.url}/v2/other/skipped/manifests/v1", timeout=30)
        assert missing.status_code == 503  # not subscribed: never cached, and the upstream is down
    finally:
        edge.stop()
