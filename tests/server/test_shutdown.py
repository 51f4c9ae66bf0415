"""SIGTERM: the primary stops accepting, lets an upload in flight finish, then exits 0."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.edge.ocipush import sha256
from tests.serverproc import RegistryProcess

CHUNK = b"x" * 64 * 1024
CHUNKS = 20


def test_sigterm_drains_an_upload_in_flight_then_exits_0(tmp_path: Path) -> None:
    proc = RegistryProcess(tmp_path / "data", env={"REGISTRY__SERVER__GRACEFUL_TIMEOUT": "60"}).start()
    data = CHUNK * CHUNKS
    digest = sha256(data)
    halfway = threading.Event()
    result: dict[str, object] = {}

    def slow_body() -> Iterator[bytes]:
        for index in range(CHUNKS):
            if index == CHUNKS // 2:
                halfway.set()
            time.sleep(0.1)
            yield CHUNK

    def upload() -> None:
        try:
            url = f"{proc.url}/v2/ops/shutdown/blobs/uploads/?digest={digest}"
            result["status"] = httpx.post(url, content=slow_body(), timeout=60).status_code
        except Exception as exc:  # reported by the assertion below
            result["error"] = repr(exc)

    try:
        worker = threading.Thread(target=upload)
        worker.start()
        assert halfway.wait(30)
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(httpx.TransportError):  # no new connections while draining
            httpx.get(f"{proc.url}/v2/", timeout=5)
        worker.join(60)
        assert result == {"status": 201}
        assert proc.proc.wait(60) == 0
    finally:
        proc.stop()
    with RegistryProcess(tmp_path / "data") as again:  # the drained upload was committed
        assert httpx.head(f"{again.url}/v2/ops/shutdown/blobs/{digest}", timeout=10).status_code == 200
