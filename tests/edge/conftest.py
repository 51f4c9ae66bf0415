"""Edge fixtures: a primary registry (access log on), edge processes in front of it, a fault-injecting proxy."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.edge.edgeproc import EdgeProcess
from tests.serverproc import ROOT, RegistryProcess

LOG_TAIL_LINES = 60
ACCESS_LOG = {"REGISTRY__LOG__ACCESS_LOG": "true"}


@pytest.fixture(scope="session")
def primary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    """One open primary for the edge tests (uniquely named repositories), every request in its log."""
    with RegistryProcess(tmp_path_factory.mktemp("edge-primary") / "data", env=ACCESS_LOG) as proc:
        yield proc


class FaultProxyProcess:
    """``python -m tests.edge.faultproxy`` in front of a registry; see that module for the faults."""

    def __init__(self, base: Path, upstream: str) -> None:
        self.log_path = base / "faultproxy.log"
        self.upstream = upstream
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> FaultProxyProcess:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.edge.faultproxy", "--upstream", self.upstream],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = re.search(r"faultproxy listening on (\S+)", self.log_path.read_text())
            if found:
                self.url = found.group(1)
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"faultproxy did not start:\n{self.log_path.read_text()}")

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]

    def set(self, **faults: Any) -> None:
        httpx.post(f"{self.url}/_fault", json=faults, timeout=10).raise_for_status()

    def requests(self) -> list[tuple[str, str]]:
        return [tuple(r) for r in httpx.get(f"{self.url}/_fault/requests", timeout=10).json()]  # type: ignore[misc]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def fault_proxy(tmp_path: Path, primary: RegistryProcess) -> Iterator[FaultProxyProcess]:
    proxy = FaultProxyProcess(tmp_path, primary.url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


EdgeFactory = Callable[..., EdgeProcess]


@pytest.fixture
def make_edge(tmp_path: Path) -> Iterator[EdgeFactory]:
    """``make_edge(upstream_url, *args)`` starts an edge (own cache directory); all are stopped at the end."""
    started: list[EdgeProcess] = []

    def make(upstream: str, *args: str) -> EdgeProcess:
        edge = EdgeProcess(tmp_path / f"edge{len(started)}", upstream, *args)
        started.append(edge)
        return edge.start()

    try:
        yield make
    finally:
        for edge in started:
            edge.stop()


def blob_gets(registry: RegistryProcess, repo: str, digest: str) -> int:
    """How many GETs of ``repo``'s blob ``digest`` the primary answered (from its access log)."""
    needle = f'"GET /v2/{repo}/blobs/{digest} 1.1" 200 '
    return sum(1 for line in registry.log_text().splitlines() if "registry.access" in line and needle in line)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, attach the tail of every edge log the test used."""
    report: pytest.TestReport = yield
    if report.failed and report.when in ("setup", "call"):
        for path in sorted(Path(getattr(item, "funcargs", {}).get("tmp_path", "/nonexistent")).glob("*/edge.log")):
            tail = "\n".join(path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
            report.sections.append((f"edge log {path.parent.name} (last {LOG_TAIL_LINES} lines)", tail))
    return report
