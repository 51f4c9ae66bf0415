"""A monolithic blob upload whose body trickles in on a thread: what the SIGTERM-drain tests keep in flight."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator

import httpx


class SlowUpload:
    """``POST /v2/<repo>/blobs/uploads/?digest=`` of ``chunks`` times ``chunk`` bytes, one piece every ``delay``
    seconds. ``halfway`` is set when half the body was sent; ``result`` is ``{"status": N}`` or ``{"error": repr}``."""

    def __init__(self, base_url: str, repo: str, chunk: bytes, chunks: int, delay: float = 0.1) -> None:
        self.chunk, self.chunks, self.delay = chunk, chunks, delay
        self.digest = "sha256:" + hashlib.sha256(chunk * chunks).hexdigest()
        self.url = f"{base_url}/v2/{repo}/blobs/uploads/?digest={self.digest}"
        self.halfway = threading.Event()
        self.result: dict[str, object] = {}
        self.thread = threading.Thread(target=self._run)

    def _body(self) -> Iterator[bytes]:
        for index in range(self.chunks):
            if index == self.chunks // 2:
                self.halfway.set()
            time.sleep(self.delay)
            yield self.chunk

    def _run(self) -> None:
        try:
            self.result["status"] = httpx.post(self.url, content=self._body(), timeout=60).status_code
        except Exception as exc:  # reported by the caller's assertion on ``result``
            self.result["error"] = repr(exc)

    def start(self) -> SlowUpload:
        self.thread.start()
        return self
