"""The servers under test, as context managers that start on a free loopback port and stop what they started
(and delete their data: a full run would otherwise keep tens of GiB until it ends).

``ours()`` is ``registry serve --auth none`` (filesystem storage, access log off by default), ``distribution()`` is
``docker-registry serve`` with filesystem storage, no auth and its access log off; ``distribution(proxy=URL)`` is
Distribution's pull-through proxy mode and ``distribution(access_log=...)`` an upstream whose access log (combined
format, one line per request) is written to a file so requests can be counted. ``edge()`` is our edge node.
``Meter`` samples a server's RSS and CPU time from /proc.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.edge.edgeproc import EdgeProcess
from tests.serverproc import RegistryProcess

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

DISTRIBUTION_CONFIG = """version: 0.1
log:
  level: error
  accesslog:
    disabled: {no_access_log}
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


@dataclass
class Server:
    """A running server: base ``url``, ``host`` (``127.0.0.1:PORT``) and ``pid`` for the meter."""

    name: str
    url: str
    pid: int
    access_log: Path | None = None

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


START_TIMEOUT = 120.0


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = START_TIMEOUT) -> None:
    """Return once ``proc`` accepts connections on ``port``; raise if it exits or takes longer than ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.args!r} did not start in {timeout} s")


@contextmanager
def distribution(work: Path, *, proxy: str | None = None, access_log: Path | None = None) -> Iterator[Server]:
    """``docker-registry serve`` on a free port with a fresh root under ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    text = DISTRIBUTION_CONFIG.format(
        no_access_log="false" if access_log else "true", root=work / "data", port=port
    )
    if proxy:
        text += f"proxy:\n  remoteurl: {proxy}\n"
    config = work / "distribution.yml"
    config.write_text(text)
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    out = open(access_log, "ab") if access_log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        yield Server("distribution", f"http://127.0.0.1:{port}", proc.pid, access_log)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if access_log:
            out.close()  # type: ignore[union-attr]
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def ours(work: Path, workers: int = 1) -> Iterator[Server]:
    """``registry serve --auth none [--workers N]`` on a free port with a fresh data directory under ``work``
    (the meter then counts the supervisor and every worker process)."""
    try:
        # A generous start timeout: on a loaded shared machine the imports alone can take tens of seconds.
        args = ["--workers", str(workers)] if workers > 1 else []
        proc = RegistryProcess(work / "data", *args).start(timeout=START_TIMEOUT)
        try:
            yield Server("ours", proc.url, proc.pid)
        finally:
            proc.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def edge(work: Path, upstream: str) -> Iterator[Server]:
    """``edge serve`` in front of ``upstream`` with a fresh cache under ``work`` (access log off by default)."""
    try:
        with EdgeProcess(work, upstream) as proc:
            yield Server("edge", proc.url, proc.pid)
    finally:
        shutil.rmtree(work, ignore_errors=True)


_LOG_LINE = re.compile(r'"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP/[\d.]+" (\d{3})')


def access_log_requests(path: Path, start: int = 0) -> list[tuple[str, str, int]]:
    """``(method, path, status)`` of every request in a combined-format access log, from byte ``start``."""
    with open(path, "rb") as fh:
        fh.seek(start)
        text = fh.read().decode(errors="replace")
    return [(m.group(1), m.group(2), int(m.group(3))) for m in _LOG_LINE.finditer(text)]


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(p) for p in task.read_text().split()]
            except OSError:
                continue
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children (live ones), in seconds."""
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` and its children, in bytes."""
    total = 0
    for p in _tree(pid):
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE_SIZE
        except OSError:
            continue
    return total


class Meter:
    """Samples a server's RSS every ``interval`` seconds while open; ``peak_rss`` and ``cpu`` (seconds used)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_rss = 0
        self.cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._cpu_start = 0.0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, rss_bytes(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> Meter:
        self._cpu_start = cpu_seconds(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_rss = max(self.peak_rss, rss_bytes(self.pid))
        self.cpu = cpu_seconds(self.pid) - self._cpu_start
