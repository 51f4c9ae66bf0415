"""The benchmark harness end to end in ``--quick`` mode (tiny sizes, one round), so it cannot silently rot:
every workload runs against both servers and every number, table and chart it promises is written.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.results import WORKLOADS
from tests.serverproc import ROOT

pytestmark = pytest.mark.e2e

TOOLS = ("docker-registry", "skopeo", "curl", "hey")


@pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS), reason=f"needs {', '.join(TOOLS)}")
def test_quick_run_writes_every_workload(tmp_path: Path) -> None:
    out = tmp_path / "results"
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nhand-written text stays.\n")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out), "--docs", str(doc)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]

    metrics = json.loads((out / "results.json").read_text())["metrics"]
    assert {m["workload"] for m in metrics} == set(WORKLOADS)
    for m in metrics:
        if m["workload"] == "ceiling":  # measured on the machine alone: no Distribution side, no ratio
            assert len(m["ours"]) == 1 and m["ours"][0] > 0 and m["theirs"] == [] and m["ratio"] is None, m
            continue
        assert len(m["ours"]) == 1 and len(m["theirs"]) == 1, m["name"]
        if m["unit"] in ("MB/s", "req/s", "s", "MiB"):
            assert m["ours"][0] > 0 and m["theirs"][0] > 0, m["name"]
            assert m["ratio"] == pytest.approx(m["ours"][0] / m["theirs"][0]), m["name"]
    by_name = {m["name"]: m for m in metrics}
    layer_gets = by_name["upstream layer GETs, 10 concurrent cold pulls"]
    assert layer_gets["ours"][0] >= 1 and layer_gets["theirs"][0] >= 1  # counted from the upstream's access log

    table = (out / "results.md").read_text()
    assert all(f"#### {title}" in table for title in WORKLOADS.values())
    for key in set(WORKLOADS) - {"ceiling"}:  # a chart compares both sides
        assert (out / f"{key}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = doc.read_text()
    assert "hand-written text stays." in text and "| ingest 8 MiB | MB/s |" in text and "(results/blob.png)" in text
