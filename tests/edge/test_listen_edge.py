"""``edge serve`` on a port that cannot be bound: one clear line and exit 1, before the cache is opened."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from tests.serverproc import BIN


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        cache = tmp_path / "cache"
        cmd = [str(BIN / "edge"), "serve", "--listen", listen, "--upstream", "http://127.0.0.1:9"]
        done = subprocess.run([*cmd, "--cache-dir", str(cache)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert f"cannot listen on {listen}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr
    assert not cache.exists()  # nothing was opened
