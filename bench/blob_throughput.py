"""Blob ingest and serve throughput with curl: this registry vs CNCF Distribution (docker-registry),
same machine, same run, alternating rounds. Usage:

    .venv/bin/python bench/blob_throughput.py [--size-mib 1024] [--rounds 3]

Prints medians and the ratio ours/theirs. Requires curl and docker-registry (installed by .ci/test.sh).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.serverproc import RegistryProcess  # noqa: E402

DISTRIBUTION_CONFIG = """version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Distribution:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.config = workdir / "distribution.yml"
        self.config.write_text(DISTRIBUTION_CONFIG.format(root=workdir / "distribution-data", port=self.port))
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Distribution:
        binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        self.proc = subprocess.Popen([binary, "serve", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("docker-registry did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def curl(*args: str) -> dict[str, float]:
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", *args],
        capture_output=True, text=True, check=True, timeout=600,
    ).stdout.split()
    return {"status": float(out[0]), "seconds": float(out[1])}


def measure_post_put(url: str, blob: Path, digest: str, size: int, repo: str) -> tuple[float, float]:
    """POST for a session, then PUT the whole body with the digest (works on every registry)."""
    started = time.perf_counter()
    out = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", "-X", "POST",
                          f"{url}/v2/{repo}/blobs/uploads/"], capture_output=True, text=True, check=True)
    location = next(line.split(":", 1)[1].strip() for line in out.stdout.splitlines()
                    if line.lower().startswith("location:"))
    if location.startswith("/"):
        location = url + location
    sep = "&" if "?" in location else "?"
    up = curl("-X", "PUT", "-H", "Content-Type: application/octet-stream", "-T", str(blob),
              f"{location}{sep}digest={digest}")
    elapsed = time.perf_counter() - started
    if up["status"] != 201:
        raise RuntimeError(f"ingest answered {up['status']}")
    down = curl(f"{url}/v2/{repo}/blobs/{digest}")
    if down["status"] != 200:
        raise RuntimeError(f"serve answered {down['status']}")
    return size / elapsed / 1e6, size / down["seconds"] / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        work = Path(tmp)
        results: dict[str, dict[str, list[float]]] = {"ours": {"ingest": [], "serve": []},
                                                       "distribution": {"ingest": [], "serve": []}}
        with RegistryProcess(work / "ours") as ours, Distribution(work) as theirs:
            for round_no in range(args.rounds):
                blob = work / "blob.bin"
                with open(blob, "wb") as fh:
                    block = os.urandom(1024 * 1024)
                    h = hashlib.sha256()
                    for i in range(args.size_mib):
                        piece = block[:-8] + i.to_bytes(4, "big") + round_no.to_bytes(4, "big")
                        fh.write(piece)
                        h.update(piece)
                digest = f"sha256:{h.hexdigest()}"
                for name, url in (("ours", ours.url), ("distribution", theirs.url)):
                    ingest, serve = measure_post_put(url, blob, digest, size, f"bench/r{round_no}")
                    results[name]["ingest"].append(ingest)
                    results[name]["serve"].append(serve)
                blob.unlink()
        report = {}
        for metric in ("ingest", "serve"):
            a = statistics.median(results["ours"][metric])
            b = statistics.median(results["distribution"][metric])
            report[metric] = {"ours_mb_s": round(a), "distribution_mb_s": round(b), "ratio": round(a / b, 2),
                              "ours_all": [round(x) for x in results["ours"][metric]],
                              "distribution_all": [round(x) for x in results["distribution"][metric]]}
        print(json.dumps({"size_mib": args.size_mib, "rounds": args.rounds, **report}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
