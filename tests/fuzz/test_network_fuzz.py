"""The network fuzzer (``tests/fuzz/netfuzz.py``) against a running primary and an edge in front of it.

Goal: no 5xx other than an intended 503 (or the 501 RFC 9112 asks for on an unknown transfer
coding), no crash, no hang, nothing outside the data directories touched
(a canary directory beside them is snapshotted), ``registry fsck`` clean afterwards. CI runs a bounded number
of cases per server (``FUZZ_NET_CASES``, default 250); ``-m slow`` runs 3000 more per server.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.ocihelpers import push_image
from tests.edge.edgeproc import EdgeProcess
from tests.faults.conftest import fsck
from tests.fuzz.conftest import tried
from tests.fuzz.netfuzz import make_case, send
from tests.serverproc import RegistryProcess

pytestmark = pytest.mark.e2e
CASES = int(os.environ.get("FUZZ_NET_CASES", "250"))
SEED = int(os.environ.get("FUZZ_SEED", "20261129"))


def snapshot(root: Path, skip: set[Path]) -> dict[str, tuple[int, str]]:
    """Every file under ``root`` outside ``skip`` (and the server logs): size and sha256."""
    found = {}
    for path in sorted(root.rglob("*")):
        if any(path == s or s in path.parents for s in skip) or path.suffix == ".log" or not path.is_file():
            continue
        found[str(path.relative_to(root))] = (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    return found


class Servers:
    def __init__(self, base: Path) -> None:
        self.base = base
        canary = base / "canary"
        canary.mkdir()
        (canary / "secret").write_text("canary: must never be read or changed\n")
        (base / "passwd").write_text("not the real one\n")
        self.primary = RegistryProcess(base / "data").start()
        self.edge = EdgeProcess(base / "edge", self.primary.url).start()
        with httpx.Client(base_url=self.primary.url, timeout=60) as client:
            push_image(client, "fuzz/app", "v1")
            push_image(client, "fuzz/app", "latest")
        self.skip = {base / "data", base / "edge"}
        self.before = snapshot(base, self.skip)

    def close(self) -> None:
        self.edge.stop()
        self.primary.stop()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    world = Servers(tmp_path_factory.mktemp("netfuzz"))
    try:
        yield world
    finally:
        world.close()


def _fuzz(url: str, cases: int, seed: int, family: str) -> Counter[str]:
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    rng = random.Random(seed)
    outcomes: Counter[str] = Counter()
    bad: list[str] = []
    for i in range(cases):
        case = make_case(rng, host)
        outcome = send(host, int(port), case)
        outcomes[outcome] += 1
        tried(family)
        intended = outcome == "503" or (outcome == "501" and case.odd_coding)
        unintended_5xx = outcome.isdigit() and int(outcome) >= 500 and not intended
        if unintended_5xx or outcome == "hang" or outcome.startswith("garbled"):
            bad.append(f"case {i} (seed {seed}): {outcome}: {case.label}")
    assert not bad, f"{len(bad)} bad outcomes of {cases}:\n" + "\n".join(bad[:30])
    return outcomes


def _healthy(servers: Servers) -> None:
    for proc in (servers.primary, servers.edge):
        assert proc.proc is not None and proc.proc.poll() is None, f"{proc.name} died"
    for url in (servers.primary.url, servers.edge.url):
        pulled = httpx.get(f"{url}/v2/fuzz/app/manifests/v1", timeout=30)
        assert pulled.status_code == 200, pulled.text
    assert snapshot(servers.base, servers.skip) == servers.before, "a file outside the data directories changed"
    report = fsck(servers.primary)
    assert report.returncode == 0, report.stdout + report.stderr
    for log in (servers.primary.log_text(), servers.edge.log_text()):
        assert "canary: must never" not in log


@pytest.mark.parametrize("target", ["primary", "edge"])
def test_fuzzed_requests_get_no_unintended_5xx(servers: Servers, target: str) -> None:
    proc = servers.primary if target == "primary" else servers.edge
    outcomes = _fuzz(proc.url, CASES, SEED, f"net: {target}")
    print(f"{target}: {CASES} cases {dict(outcomes)}")
    _healthy(servers)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["primary", "edge"])
def test_fuzzed_requests_long_run(servers: Servers, target: str) -> None:
    proc = servers.primary if target == "primary" else servers.edge
    outcomes = _fuzz(proc.url, 3000, SEED + 1, f"net: {target} (slow)")
    print(f"{target}: 3000 cases {dict(outcomes)}")
    _healthy(servers)


@pytest.mark.parametrize("target", ["primary", "edge"])
def test_slow_loris_clients_do_not_starve_others(servers: Servers, target: str) -> None:
    """Connections that trickle their headers or body one byte at a time; others are served meanwhile."""
    proc = servers.primary if target == "primary" else servers.edge
    host, port = proc.url.split("://", 1)[1].rsplit(":", 1)
    slow: list[socket.socket] = []
    try:
        for i in range(40):
            sock = socket.create_connection((host, int(port)), timeout=5)
            if i % 2:
                sock.sendall(b"GET /v2/fuzz/app/manifests/v1 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            else:
                sock.sendall(b"POST /v2/fuzz/app/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
            slow.append(sock)
        for _ in range(5):
            for sock in slow:
                with contextlib.suppress(OSError):  # the server may have timed it out: allowed
                    sock.sendall(b"a")
            started = time.monotonic()
            response = httpx.get(f"{proc.url}/v2/fuzz/app/manifests/v1", timeout=10)
            assert response.status_code == 200 and time.monotonic() - started < 5
            tried(f"net: slow-loris {target}")
            time.sleep(0.5)
    finally:
        for sock in slow:
            sock.close()
    _healthy(servers)
