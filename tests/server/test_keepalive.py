"""Keep-alive timing of registry.connguard.IdleTimer (hypercorn's idle task replaced): a connection is closed
``keep_alive_timeout`` after its last answer — not while a request runs, not while requests keep coming — and at
once when the server shuts down."""

from __future__ import annotations

import hashlib
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serverproc import RegistryProcess

TIMEOUT = 1.0
ENV = {"REGISTRY__SERVER__KEEP_ALIVE_TIMEOUT": str(TIMEOUT), "REGISTRY__SERVER__GRACEFUL_TIMEOUT": "30"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RegistryProcess]:
    proc = RegistryProcess(tmp_path / "data", env=ENV).start()
    yield proc
    proc.stop()


def _connect(proc: RegistryProcess) -> socket.socket:
    host, port = proc.host.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def _answer(sock: socket.socket) -> bytes:
    """Read one answer without a body (GET /v2/ is tiny: headers and body arrive together)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before an answer: {data!r}"
        data += chunk
    return data


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``sock`` (None: still open after ``seconds``)."""
    sock.settimeout(seconds)
    started = time.monotonic()
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return None
    return time.monotonic() - started


def test_a_connection_without_requests_is_closed_after_the_timeout(server: RegistryProcess) -> None:
    with _connect(server) as sock:
        closed = _closed_within(sock, 5)
    assert closed is not None and 0.5 < closed < TIMEOUT + 1.5, closed


def test_requests_within_the_timeout_keep_the_connection_open(server: RegistryProcess) -> None:
    with _connect(server) as sock:
        started = time.monotonic()
        while time.monotonic() - started < 3 * TIMEOUT:  # well past one timeout in total
            sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b" 200 " in _answer(sock).split(b"\r\n")[0]
            time.sleep(TIMEOUT / 3)
        closed = _closed_within(sock, 5)
    assert closed is not None and 0.5 < closed < TIMEOUT + 1.5, closed


def test_a_request_longer_than_the_timeout_is_not_cut(server: RegistryProcess) -> None:
    body = b"k" * 30_000
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    head = (
        f"POST /v2/keep/alive/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with _connect(server) as sock:
        sock.sendall(head)
        for i in range(0, len(body), 10_000):  # the body takes 3 times the idle timeout to arrive
            time.sleep(TIMEOUT)
            sock.sendall(body[i : i + 10_000])
        assert b" 201 " in _answer(sock).split(b"\r\n")[0]


def test_sigterm_closes_idle_connections_at_once(server: RegistryProcess) -> None:
    assert server.proc is not None
    with _connect(server) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        _answer(sock)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        closed = _closed_within(sock, 5)
        assert closed is not None and closed < TIMEOUT, closed  # not after the idle timeout, not after 30 s
        assert server.proc.wait(10) == 0
        assert time.monotonic() - started < 5


def test_a_request_sent_in_time_is_answered_after_the_server_stalled_past_the_timeout(tmp_path: Path) -> None:
    """The server is stopped (as a busy event loop would be) past the idle deadline while a request waits on
    the connection: when it resumes, the request is answered, not reset. Several rounds, because which of
    the reader and the idle timer runs first after the stall is up to trio's scheduler."""
    short = 0.3
    env = {**ENV, "REGISTRY__SERVER__KEEP_ALIVE_TIMEOUT": str(short)}
    with RegistryProcess(tmp_path / "data", env=env) as proc, _connect(proc) as sock:
        assert proc.proc is not None
        for _ in range(12):
            sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b" 200 " in _answer(sock).split(b"\r\n")[0]
            time.sleep(0.05)  # the server has armed the idle deadline
            proc.proc.send_signal(signal.SIGSTOP)
            try:
                time.sleep(0.05)
                sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")  # sent well within the timeout
                time.sleep(short + 0.2)
            finally:
                proc.proc.send_signal(signal.SIGCONT)
            assert b" 200 " in _answer(sock).split(b"\r\n")[0]
