"""The real clients the workloads drive: curl (blob upload and download), skopeo (push, pull) and hey (req/s).

Every helper checks the answer (status codes, hey's status distribution) and raises ``BenchError`` rather than
report a number for a request that failed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

from bench.payloads import Blob, Image

TIMEOUT = 1800


class BenchError(RuntimeError):
    """A client failed or a server answered with an unexpected status."""


def run(cmd: list[str], timeout: float = TIMEOUT) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(cmd[:4])}… exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def curl(*args: str) -> tuple[int, float]:
    """curl with the body discarded; returns (HTTP status, curl's total seconds)."""
    out = run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", *args]).split()
    return int(out[0]), float(out[1])


def upload(url: str, repo: str, blob: Blob) -> float:
    """Monolithic POST + PUT of ``blob`` with curl; returns wall seconds for both requests."""
    started = time.perf_counter()
    headers = run(["curl", "-s", "-D", "-", "-o", "/dev/null", "-X", "POST", f"{url}/v2/{repo}/blobs/uploads/"])
    location = next((line.split(":", 1)[1].strip() for line in headers.splitlines()
                     if line.lower().startswith("location:")), "")
    if not location:
        raise BenchError(f"POST upload answered without Location:\n{headers}")
    if location.startswith("/"):
        location = url + location
    sep = "&" if "?" in location else "?"
    status, _ = curl("-X", "PUT", "-H", "Content-Type: application/octet-stream", "-T", str(blob.path),
                      f"{location}{sep}digest={blob.digest}")
    elapsed = time.perf_counter() - started
    if status != 201:
        raise BenchError(f"PUT upload answered {status}")
    return elapsed


def download(url: str, repo: str, digest: str) -> float:
    """GET a blob with curl into /dev/null; returns curl's total seconds."""
    status, seconds = curl(f"{url}/v2/{repo}/blobs/{digest}")
    if status != 200:
        raise BenchError(f"GET blob answered {status}")
    return seconds


def parallel_downloads(url: str, repo: str, digest: str, count: int) -> float:
    """``count`` curl GETs of one blob at once; returns wall seconds until the last one finished."""
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{url}/v2/{repo}/blobs/{digest}"]
    started = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(count)]
    outs = [p.communicate(timeout=TIMEOUT)[0] for p in procs]
    elapsed = time.perf_counter() - started
    if any(p.returncode != 0 for p in procs) or any(o != "200" for o in outs):
        raise BenchError(f"parallel GETs answered {outs}")
    return elapsed


def _skopeo(src: str, dest: str) -> list[str]:
    return ["skopeo", "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false", src, dest]


def push(image: Image, host: str, repo: str) -> float:
    """``skopeo copy oci:… docker://host/repo:tag``; returns wall seconds."""
    started = time.perf_counter()
    run([*_skopeo(image.ref, f"docker://{host}/{repo}:{image.tag}"), "--preserve-digests"])
    return time.perf_counter() - started


def pull(host: str, repo: str, tag: str, dest: Path) -> float:
    """``skopeo copy docker://host/repo:tag oci:dest`` into a fresh layout; returns wall seconds."""
    shutil.rmtree(dest, ignore_errors=True)
    started = time.perf_counter()
    run(_skopeo(f"docker://{host}/{repo}:{tag}", f"oci:{dest}:{tag}"))
    return time.perf_counter() - started


def parallel_pulls(host: str, repo: str, tag: str, dests: list[Path]) -> float:
    """One skopeo pull per destination, all at once; returns wall seconds until the last one finished."""
    for dest in dests:
        shutil.rmtree(dest, ignore_errors=True)
    started = time.perf_counter()
    procs = [subprocess.Popen(_skopeo(f"docker://{host}/{repo}:{tag}", f"oci:{d}:{tag}"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for d in dests]
    errors = [p.communicate(timeout=TIMEOUT)[1] for p in procs]
    elapsed = time.perf_counter() - started
    failed = [e for p, e in zip(procs, errors, strict=True) if p.returncode != 0]
    if failed:
        raise BenchError(f"{len(failed)} concurrent pulls failed: {failed[0][-2000:]}")
    return elapsed


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_STATUS = re.compile(r"\[(\d{3})\]\s+(\d+) responses")


def hey(url: str, method: str, requests: int, concurrency: int, accept: str) -> float:
    """``hey`` against one URL; every response must be 200. Returns requests per second."""
    out = run(["hey", "-n", str(requests), "-c", str(concurrency), "-m", method, "-H", f"Accept: {accept}", url])
    statuses = {int(code): int(n) for code, n in _STATUS.findall(out)}
    if statuses != {200: requests}:
        raise BenchError(f"hey {method} {url}: status distribution {statuses}\n{out[-2000:]}")
    found = _RPS.search(out)
    if not found:
        raise BenchError(f"hey printed no Requests/sec:\n{out[-2000:]}")
    return float(found.group(1))
