"""Start and stop real ``edge serve`` processes on loopback for tests (port 0, URL parsed from the log)."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.serverproc import BIN

_LISTENING = re.compile(r"edge listening on (https?://\S+)")


class EdgeProcess:
    """An ``edge serve`` child process in front of ``upstream``; ``url`` is set once :meth:`start` returned."""

    def __init__(self, base: Path, upstream: str, *args: str) -> None:
        self.base = base
        self.upstream = upstream
        self.args = list(args)
        self.cache_dir = base / "cache"
        self.log_path = base / "edge.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 20.0) -> EdgeProcess:
        self.base.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        start_at = log.tell()
        cmd = [str(BIN / "edge"), "serve", "--listen", "127.0.0.1:0", "--upstream", self.upstream]
        cmd += ["--cache-dir", str(self.cache_dir), *self.args]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[start_at:].decode(errors="replace")
            found = _LISTENING.search(text)
            if found:
                self.url = found.group(1)
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"edge exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"edge did not start in {timeout}s:\n{self.log_text()}")

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]

    def stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/edge/stats", timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def __enter__(self) -> EdgeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
