"""A port that cannot be bound is one clear line and exit 1, for one process and for --workers."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.serverproc import BIN


@pytest.mark.parametrize("extra", [[], ["--workers", "2"]], ids=["one-process", "workers"])
def test_a_port_in_use_is_a_clear_error(tmp_path: Path, extra: list[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        cmd = [str(BIN / "registry"), "serve", "--auth", "none", "--data", str(tmp_path / "d"), "--listen", listen]
        done = subprocess.run([*cmd, *extra], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"cannot listen on {listen}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr
