"""Blob pull through an edge vs straight from the primary, with curl, same run, alternating rounds. Usage:

    .venv/bin/python bench/edge_pull.py [--size-mib 1024] [--rounds 3]

Each round: a direct GET from the primary, a cold GET through a fresh edge (empty cache: the fill path), then a
warm GET through the same edge (served from the cache). Prints every round, the medians and cold/direct, and the
CPU-seconds each process used per GET (primary, edge, curl): on a small shared machine wall times swing with the
load, CPU-seconds much less, and their sum over two cores bounds how fast a cold pull can be.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.servers import cpu_seconds  # noqa: E402
from tests.edge.edgeproc import EdgeProcess  # noqa: E402
from tests.edge.ocipush import push_file, random_file  # noqa: E402
from tests.serverproc import RegistryProcess  # noqa: E402

MIB = 1024 * 1024


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_get(url: str, size: int, pids: dict[str, int]) -> tuple[float, dict[str, float]]:
    """Seconds curl took to GET ``url`` to /dev/null, and the CPU-seconds of each of ``pids`` and of curl
    meanwhile; asserts the status and the byte count."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    curl_before = _children_cpu()
    proc = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", url],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    cpu["curl"] = _children_cpu() - curl_before
    status, downloaded, seconds = proc.stdout.split()
    if status != "200" or int(downloaded) != size:
        raise RuntimeError(f"GET {url}: HTTP {status}, {downloaded} of {size} bytes; {proc.stderr}")
    return float(seconds), cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * MIB
    results: dict[str, list[float]] = {"direct": [], "edge cold": [], "edge warm": []}
    cpus: dict[str, list[dict[str, float]]] = {name: [] for name in results}
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as tmp:
        base = Path(tmp)
        blob = base / "blob"
        digest = random_file(blob, size)
        repo = "bench/edge-pull"
        with RegistryProcess(base / "primary") as primary:
            push_file(primary.url, repo, blob, digest)
            blob.unlink()
            path = f"/v2/{repo}/blobs/{digest}"
            for round_no in range(args.rounds):
                pids = {"primary": primary.pid}
                seconds, cpu = timed_get(primary.url + path, size, pids)
                results["direct"].append(seconds)
                cpus["direct"].append(cpu)
                with EdgeProcess(base / f"edge{round_no}", primary.url) as edge:
                    pids["edge"] = edge.pid
                    for name in ("edge cold", "edge warm"):
                        seconds, cpu = timed_get(edge.url + path, size, pids)
                        results[name].append(seconds)
                        cpus[name].append(cpu)
                print(
                    f"round {round_no + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in results.items()),
                    flush=True,
                )
                os.sync()
    medians = {k: statistics.median(v) for k, v in results.items()}
    print(f"{args.size_mib} MiB, {args.rounds} rounds, medians (wall; CPU-seconds per process):")
    for name, seconds in medians.items():
        cpu_cells = {proc: statistics.median(c[proc] for c in cpus[name]) for proc in cpus[name][0]}
        cpu_text = ", ".join(f"{proc} {value:.2f}" for proc, value in cpu_cells.items())
        total = sum(cpu_cells.values())
        print(f"  {name:10} {seconds:6.2f} s  {args.size_mib / seconds:7.0f} MiB/s  CPU-s: {cpu_text}; sum {total:.2f}")
    print(
        f"  cold/direct {medians['edge cold'] / medians['direct']:.2f}x, warm/direct "
        f"{medians['edge warm'] / medians['direct']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
