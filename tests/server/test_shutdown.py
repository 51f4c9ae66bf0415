"""SIGTERM: the primary stops accepting, lets an upload in flight finish, then exits 0."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.serverproc import RegistryProcess
from tests.slowupload import SlowUpload

CHUNK = b"x" * 64 * 1024
CHUNKS = 20


def test_sigterm_drains_an_upload_in_flight_then_exits_0(tmp_path: Path) -> None:
    proc = RegistryProcess(tmp_path / "data", env={"REGISTRY__SERVER__GRACEFUL_TIMEOUT": "60"}).start()
    try:
        upload = SlowUpload(proc.url, "ops/shutdown", CHUNK, CHUNKS).start()
        assert upload.halfway.wait(30)
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(httpx.TransportError):  # no new connections while draining
            httpx.get(f"{proc.url}/v2/", timeout=5)
        upload.thread.join(60)
        assert upload.result == {"status": 201}
        assert proc.proc.wait(60) == 0
    finally:
        proc.stop()
    with RegistryProcess(tmp_path / "data") as again:  # the drained upload was committed
        assert httpx.head(f"{again.url}/v2/ops/shutdown/blobs/{upload.digest}", timeout=10).status_code == 200
