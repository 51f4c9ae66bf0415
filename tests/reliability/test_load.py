"""A bounded mixed load against the real primary and through an edge in front of it: 0 errors, flat memory.

Pullers fetch seeded images (manifest by tag, then every blob, each re-hashed) from the primary and through
the edge; pushers push small images and delete old ones; listers read tag lists and the catalog. Each
server's RSS (``/proc/<pid>/status``) is sampled; after a warm-up the median RSS of the last fifth of the
run may exceed that of the first fifth after warm-up by at most ``RSS_GROWTH_MIB``.

CI: ~25 s (``RELIABILITY_LOAD_SECONDS``). Soak: ``RELIABILITY_SOAK_SECONDS=1800 .venv/bin/pytest -m slow
tests/reliability -k soak -s``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.edge.edgeproc import EdgeProcess
from tests.reliability.loadgen import MixedLoad, RssSampler, push_image
from tests.serverproc import RegistryProcess

STARTUP = 120.0
RSS_GROWTH_MIB = 32
SEED_IMAGES = 6


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[RegistryProcess, EdgeProcess]]:
    primary = RegistryProcess(tmp_path / "data").start(timeout=STARTUP)
    try:
        edge = EdgeProcess(tmp_path / "edge", primary.url).start(timeout=STARTUP)
        try:
            yield primary, edge
        finally:
            assert edge.stop() == 0, edge.log_text()[-2000:]
    finally:
        assert primary.stop() == 0, primary.log_text()[-2000:]


def run_load(primary: RegistryProcess, edge: EdgeProcess, seconds: float) -> str:
    images = []
    with httpx.Client(base_url=primary.url, timeout=60) as client:
        for i in range(SEED_IMAGES):
            layers = [os.urandom(64 * 1024), os.urandom(512 * 1024)]
            push_image(client, f"load/seed-{i}", "v1", layers)
            images.append((f"load/seed-{i}", "v1"))
    load = MixedLoad(images)
    stop = threading.Event()
    threads = load.threads(primary.url, stop, pullers=10, pushers=4, listers=3)
    threads += load.threads(edge.url, stop, pullers=6, pushers=0, listers=0, pulls_only=True)
    warmup = max(5.0, seconds * 0.2)
    with RssSampler({"primary": primary.pid, "edge": edge.pid}) as rss:
        started = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(120)
        elapsed = time.monotonic() - started
    counts = load.counts
    assert counts.errors == 0, f"{counts.errors} errors of {counts.requests}: {counts.samples}"
    assert counts.requests > seconds * 5, f"only {counts.requests} requests in {elapsed:.0f}s"
    span = (elapsed - warmup) / 5
    lines = [
        f"load: {elapsed:.0f} s, {len(threads)} clients, {counts.requests} requests "
        f"({counts.requests / elapsed:.0f}/s), 0 errors, {dict(sorted(counts.by_kind.items()))}"
    ]
    for name in ("primary", "edge"):
        first = rss.window(name, warmup, warmup + span)
        last = rss.window(name, elapsed - span, elapsed)
        peak = max(v for _, v in rss.samples[name])
        lines.append(f"{name} RSS: {rss.samples[name][0][1] // 1024} MiB at start, {first // 1024} MiB after "
                     f"warm-up, {last // 1024} MiB at the end, peak {peak // 1024} MiB")
        assert last - first <= RSS_GROWTH_MIB * 1024, lines[-1]
        minutes = [v // 1024 for t, v in rss.samples[name] if int(t / 60) != int((t - rss.interval) / 60)]
        if len(minutes) > 2:
            lines.append(f"{name} RSS each minute (MiB): {minutes}")
    report = "\n".join(lines)
    print(report)
    return report


def test_mixed_load_has_no_errors_and_flat_memory(servers: tuple[RegistryProcess, EdgeProcess]) -> None:
    run_load(*servers, seconds=float(os.environ.get("RELIABILITY_LOAD_SECONDS", "25")))


@pytest.mark.slow
def test_soak(servers: tuple[RegistryProcess, EdgeProcess]) -> None:
    run_load(*servers, seconds=float(os.environ.get("RELIABILITY_SOAK_SECONDS", "600")))
