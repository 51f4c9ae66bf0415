"""``python -m bench [--quick] [--rounds N] [--only W ...] [--out DIR] [--docs FILE]``: run the workloads, write
``results.json``, ``results.md`` and one PNG per workload to ``--out`` (default ``bench/results``, or
``bench/results/quick`` with ``--quick``), and — on a full run, or with ``--docs`` — regenerate the results block
of ``docs/performance.md``. ``python -m bench --report-only`` re-renders from an existing ``results.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import blobs, ceiling, images, proxy, report, summary
from bench.plan import FULL, QUICK, Plan
from bench.results import WORKLOADS, Results

ROOT = Path(__file__).resolve().parent.parent
Workload = Callable[[Plan, Path, Results], None]
RUNNERS: dict[str, Workload] = {
    "blob": blobs.blob_throughput,
    "image": images.push_pull,
    "concurrent": blobs.concurrent_gets,
    "manifest": images.manifest_rate,
    "proxy": proxy.pull_through,
    "resources": blobs.transfer_resources,
    "ceiling": ceiling.ceilings,
}
TOOLS = ("docker-registry", "skopeo", "curl", "hey")


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False).stdout.split()
    except OSError:
        return "?"
    return next((w for w in out if w[:1].isdigit()), "?")


def _meta(plan: Plan, quick: bool) -> dict[str, object]:
    cpu_model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), platform.machine())
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quick": quick, "rounds": plan.rounds,
            "cpus": os.cpu_count(), "cpu_model": cpu_model, "kernel": platform.release(),
            "python": platform.python_version(), "commit": commit,
            "distribution": _version(["docker-registry", "--version"]), "skopeo": _version(["skopeo", "--version"]),
            "load_before": round(os.getloadavg()[0], 2), "plan": plan.__dict__}


def _merged(previous: Results, workloads: list[str], meta: dict[str, object]) -> Results:
    """``previous`` without the rows of ``workloads`` (about to be measured again); ``meta`` noted as a rerun."""
    previous.metrics = {k: m for k, m in previous.metrics.items() if m.workload not in workloads}
    reruns = previous.meta.setdefault("reruns", [])
    reruns.append({"workloads": workloads, "date": meta["date"], "load_before": meta["load_before"]})
    return previous


def render(results: Results, out: Path, doc: Path | None) -> None:
    """Write results.json, results.md and the charts; with ``doc``, regenerate its results block and — when
    ``doc`` is the project's docs/performance.md — the README's summary block too."""
    results.save(out / "results.json")
    table = report.markdown(results)
    (out / "results.md").write_text(table + "\n")
    pngs = report.charts(results, out)
    if doc is not None:
        rel = [os.path.relpath(p, doc.parent) for p in pngs]
        report.update_doc(doc, table, rel)
        if doc.resolve() == (ROOT / "docs" / "performance.md").resolve():
            summary.update_readme(ROOT / "README.md", results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one round: a smoke run")
    parser.add_argument("--rounds", type=int, help="rounds per workload (default 3, quick 1)")
    parser.add_argument("--only", nargs="+", choices=list(WORKLOADS), help="run only these workloads")
    parser.add_argument("--out", type=Path, help="results directory")
    parser.add_argument("--docs", type=Path, help="markdown file whose results block is regenerated")
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/performance.md")
    parser.add_argument("--merge", action="store_true",
                        help="with --only: replace those workloads' rows in the existing --out/results.json")
    parser.add_argument("--report-only", action="store_true", help="re-render from --out/results.json")
    args = parser.parse_args(argv)
    plan = (QUICK if args.quick else FULL).scaled(args.rounds)
    out: Path = args.out or ROOT / "bench" / "results" / ("quick" if args.quick else "")
    doc: Path | None = args.docs or (None if args.quick else ROOT / "docs" / "performance.md")
    if args.no_docs:
        doc = None
    out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        render(Results.load(out / "results.json"), out, doc)
        return 0
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        print(f"missing tools: {', '.join(missing)} (bash bench/run.sh installs them)", file=sys.stderr)
        return 2
    results = Results(_meta(plan, args.quick))
    if args.merge and (out / "results.json").exists():
        results = _merged(Results.load(out / "results.json"), args.only or list(WORKLOADS), results.meta)
    with tempfile.TemporaryDirectory(prefix="bench-", dir=os.environ.get("BENCH_TMP")) as tmp:
        for key in args.only or list(WORKLOADS):
            started = time.monotonic()
            print(f"[bench] {WORKLOADS[key]} …", file=sys.stderr, flush=True)
            work = Path(tmp) / key
            work.mkdir()
            RUNNERS[key](plan, work, results)
            print(f"[bench]   done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
            results.meta["load_after"] = round(os.getloadavg()[0], 2)
            render(results, out, doc)  # after every workload: a crash late in the run keeps the earlier results
    print(report.markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
