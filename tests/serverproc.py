"""Start and stop real ``registry serve`` processes on loopback for tests (port 0, parsed from the log)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
_LISTENING = re.compile(r"registry listening on (https?://\S+)")
SBOM_OFF = {"REGISTRY__SUPPLY_CHAIN__SBOM_ON_PUSH": "false"}
SBOM_ON_PUSH = {"REGISTRY__SUPPLY_CHAIN__SBOM_ON_PUSH": "true"}
# The outbox subscribers of a default registry (SBOM, attestation, scans): each reads every pushed manifest.
EVENT_SUBSCRIBERS = ("supplychain.sbom", "supplychain.attest", "scan")


def wait_for_event_subscribers(data: Path, names: tuple[str, ...] = EVENT_SUBSCRIBERS, timeout: float = 30.0) -> None:
    """Until each subscriber in ``names`` has handled every outbox event committed so far (its cursor in
    ``outbox_cursors`` reached the outbox head): what it does for a push has then been done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = sqlite3.connect(data / "registry.db")
        try:
            (head,) = conn.execute("SELECT max(id) FROM outbox").fetchone()
            cursors = dict(conn.execute("SELECT subscriber, last_id FROM outbox_cursors").fetchall())
        finally:
            conn.close()
        if head is not None and all(cursors.get(name, 0) >= head for name in names):
            return
        time.sleep(0.1)
    raise AssertionError(f"the event subscribers {names} did not catch up within {timeout}s")


class ChildServer:
    """A server child process on 127.0.0.1 port 0; ``url`` is parsed from its log line ``listening``."""

    name = "server"

    def __init__(self, log_path: Path, listening: re.Pattern[str], env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        self.listening = listening
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def command(self) -> list[str]:
        raise AssertionError("subclasses say what to run")

    def start(self, timeout: float = 60.0) -> Self:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        start_at = log.tell()
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[start_at:].decode(errors="replace")
            found = self.listening.search(text)
            if found:
                self.url = found.group(1)
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not start in {timeout}s:\n{self.log_text()}")

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` as image references need it."""
        return self.url.split("://", 1)[1]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not exit in ``timeout``."""
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

    def __enter__(self) -> Self:
        if self.proc is not None and self.proc.poll() is None:  # `with X.start(timeout=...)`: already running
            return self
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RegistryProcess(ChildServer):
    """A ``registry serve`` child process (``--auth none`` unless ``--auth`` is given)."""

    name = "registry"

    def __init__(self, data: Path, *args: str, env: dict[str, str] | None = None) -> None:
        # SBOMs on push add referrers and cosign ``.att`` tags behind a test's back: off unless a test
        # (tests/supplychain) turns them on with ``SBOM_ON_PUSH``.
        super().__init__(data.parent / f"{data.name}.log", _LISTENING, {**SBOM_OFF, **(env or {})})
        self.data = data
        self.args = list(args)

    def command(self) -> list[str]:
        self.data.mkdir(parents=True, exist_ok=True)
        cmd = [str(BIN / "registry"), "serve", "--listen", "127.0.0.1:0", "--data", str(self.data)]
        if "--auth" not in self.args:
            cmd += ["--auth", "none"]
        return cmd + self.args

    def env_for_cli(self) -> dict[str, str]:
        """The environment for CLI commands run against this server's data directory."""
        return {**os.environ, **self.env}
