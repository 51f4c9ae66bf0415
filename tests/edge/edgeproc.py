"""Start and stop real ``edge serve`` processes on loopback for tests (port 0, URL parsed from the log)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from tests.serverproc import BIN, ChildServer

_LISTENING = re.compile(r"edge listening on (https?://\S+)")


class EdgeProcess(ChildServer):
    """An ``edge serve`` child process in front of ``upstream``; ``url`` is set once :meth:`start` returned."""

    name = "edge"

    def __init__(self, base: Path, upstream: str, *args: str) -> None:
        super().__init__(base / "edge.log", _LISTENING)
        self.base = base
        self.upstream = upstream
        self.args = list(args)
        self.cache_dir = base / "cache"

    def command(self) -> list[str]:
        self.base.mkdir(parents=True, exist_ok=True)
        cmd = [str(BIN / "edge"), "serve", "--listen", "127.0.0.1:0", "--upstream", self.upstream]
        return [*cmd, "--cache-dir", str(self.cache_dir), *self.args]

    def stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/edge/stats", timeout=10)
        response.raise_for_status()
        return dict(response.json())
