"""SIGTERM with many uploads in flight: requests that finish within ``server.graceful_timeout`` are
committed (201; a chunk PATCH 202, its session finished after the restart) and the process exits 0; one
slower than the deadline is cut off at it, and nothing of it is visible.

(tests/server/test_shutdown.py covers one monolithic upload draining; this adds concurrency, every upload
style, the deadline, and fsck afterwards.)
"""

from __future__ import annotations

import hashlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.reliability.check import start_fsck
from tests.serverproc import RegistryProcess

CHUNK = b"d" * 32 * 1024
GRACE = 12.0


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def slow(data: bytes, pieces: int, pause: float, halfway: threading.Event) -> Iterator[bytes]:
    step = len(data) // pieces
    for i in range(pieces):
        if i == pieces // 2:
            halfway.set()
        time.sleep(pause)
        yield data[i * step : (i + 1) * step if i < pieces - 1 else len(data)]


def test_sigterm_drains_concurrent_uploads_and_cuts_one_past_the_deadline(tmp_path: Path) -> None:
    proc = RegistryProcess(tmp_path / "data", env={"REGISTRY__SERVER__GRACEFUL_TIMEOUT": str(GRACE)})
    proc.start(timeout=120)
    results: dict[str, object] = {}
    started: list[threading.Event] = []
    uploads: dict[str, bytes] = {}

    def run(name: str, data: bytes, send: Callable[[httpx.Client, Iterator[bytes]], httpx.Response],
            pause: float) -> threading.Thread:
        halfway = threading.Event()
        started.append(halfway)
        uploads[name] = data

        def go() -> None:
            try:
                with httpx.Client(base_url=proc.url, timeout=120) as client:
                    results[name] = send(client, slow(data, 10, pause, halfway)).status_code
            except httpx.HTTPError as exc:
                results[name] = type(exc).__name__
        return threading.Thread(target=go)

    def monolithic(repo: str, data: bytes) -> Callable[[httpx.Client, Iterator[bytes]], httpx.Response]:
        return lambda c, body: c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data)}, content=body)

    def post_put(repo: str, data: bytes) -> Callable[[httpx.Client, Iterator[bytes]], httpx.Response]:
        def send(c: httpx.Client, body: Iterator[bytes]) -> httpx.Response:
            location = c.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
            return c.put(location, params={"digest": sha256(data)}, content=body)
        return send

    sessions: dict[str, str] = {}

    def chunked(repo: str, data: bytes) -> Callable[[httpx.Client, Iterator[bytes]], httpx.Response]:
        """A PATCH in flight drains (202); the PUT would be a new request, refused while draining, so the
        session is finished after the restart, as a client resumes."""
        def send(c: httpx.Client, body: Iterator[bytes]) -> httpx.Response:
            location = c.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
            r = c.patch(location, content=body)  # streamed (chunked transfer encoding)
            sessions[sha256(data)] = urlsplit(r.headers.get("location", "")).path
            return r
        return send

    styles = {"monolithic": monolithic, "postput": post_put, "chunked": chunked}
    threads = []
    for i in range(9):
        style = list(styles)[i % 3]
        data = CHUNK * 20 + f"drain {i}".encode()
        threads.append(run(f"{style}-{i}", data, styles[style](f"drain/{style}", data), 0.2))  # ~2 s each
    too_slow = CHUNK * 20 + b"past the deadline"
    threads.append(run("too-slow", too_slow, monolithic("drain/slow", too_slow), 3.0))  # ~30 s > GRACE
    try:
        for t in threads:
            t.start()
        assert all(e.wait(60) for e in started[:-1])
        assert proc.proc is not None
        signalled = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        code = proc.proc.wait(GRACE + 30)
        took = time.monotonic() - signalled
        for t in threads:
            t.join(60)
    finally:
        proc.stop()
    assert code == 0, proc.log_text()[-3000:]
    assert took <= GRACE + 10, f"exit took {took:.1f}s with a {GRACE}s deadline"
    expected = {k: 202 if k.startswith("chunked") else 201 for k in uploads if k != "too-slow"}
    assert {k: v for k, v in results.items() if k != "too-slow"} == expected
    assert results["too-slow"] != 201

    checking = start_fsck(tmp_path / "data")
    with RegistryProcess(tmp_path / "data").start(timeout=120) as again:
        for name, data in uploads.items():
            repo = "drain/slow" if name == "too-slow" else f"drain/{name.rsplit('-', 1)[0]}"
            if name.startswith("chunked"):
                path = sessions[sha256(data)]
                status = httpx.get(f"{again.url}{path}", timeout=30)
                assert status.status_code == 204 and status.headers["range"] == f"0-{len(data) - 1}", name
                done = httpx.put(f"{again.url}{path}", params={"digest": sha256(data)}, timeout=30)
                assert done.status_code == 201, done.text
            r = httpx.get(f"{again.url}/v2/{repo}/blobs/{sha256(data)}", timeout=30)
            if name == "too-slow":
                assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
            else:
                assert r.status_code == 200 and r.content == data, name
    out, err = checking.communicate(timeout=300)
    assert checking.returncode == 0, out + err
