"""An in-process fake upstream for edge unit tests (an ``httpx.MockTransport`` handler).

Blobs can be held mid-body (``release``), corrupted (one byte flipped in the second half, length unchanged),
and the whole upstream can answer a fixed status. Every request is recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from edge.api.context import EdgeContext
from edge.app import open_edge
from edge.settings import EdgeSettings


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeUpstream:
    def __init__(self) -> None:
        self.blobs: dict[tuple[str, str], bytes] = {}  # (repo, digest) → bytes
        self.manifests: dict[tuple[str, str], tuple[str, bytes]] = {}  # (repo, ref) → (media type, bytes)
        self.calls: list[tuple[str, str]] = []
        self.hold = False  # hold blob bodies after the first half until ``release`` is set
        self.release = trio.Event()
        self.half_sent = trio.Event()
        self.corrupt = False
        self.status = 0
        self.error: Exception | None = None  # raised for every request (a timeout, a refused connection)
        self.pull_policies: dict[str, str] = {}  # repo → X-Registry-Pull-Policy on its manifest answers
        self.denied: set[str] = set()  # manifest digests answered with 403 DENIED (as the primary's scan policy)

    def add_blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        self.blobs[(repo, digest)] = data
        return digest

    def add_manifest(self, repo: str, tag: str, content: bytes, media_type: str) -> str:
        digest = sha256(content)
        self.manifests[(repo, tag)] = self.manifests[(repo, digest)] = (media_type, content)
        return digest

    def count(self, method: str, fragment: str = "") -> int:
        return sum(1 for m, path in self.calls if m == method and fragment in path)

    async def _body(self, data: bytes) -> AsyncIterator[bytes]:
        half = len(data) // 2
        yield data[:half]
        self.half_sent.set()
        if self.hold:
            await self.release.wait()
        rest = data[half:]
        if self.corrupt and rest:
            rest = bytes([rest[0] ^ 0xFF]) + rest[1:]
        yield rest

    async def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append((request.method, path))
        if self.error is not None:
            raise self.error
        if self.status:
            return httpx.Response(self.status, json={"errors": [{"code": "UNAVAILABLE", "message": "down"}]})
        repo, _, rest = path.removeprefix("/v2/").partition("/blobs/")
        if rest:
            data = self.blobs.get((repo, rest))
            if data is None:
                return httpx.Response(404, json={"errors": [{"code": "BLOB_UNKNOWN", "message": "unknown"}]})
            headers = {"Content-Length": str(len(data)), "Docker-Content-Digest": rest}
            if request.method == "HEAD":
                return httpx.Response(200, headers=headers)
            return httpx.Response(200, headers=headers, content=self._body(data))
        repo, _, ref = path.removeprefix("/v2/").partition("/manifests/")
        found = self.manifests.get((repo, ref))
        if found is None:
            return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]})
        media_type, content = found
        policy = {"X-Registry-Pull-Policy": self.pull_policies[repo]} if repo in self.pull_policies else {}
        if sha256(content) in self.denied:
            error = {"errors": [{"code": "DENIED", "message": f"pull refused by {policy}"}]}
            return httpx.Response(403, headers=policy, json=None if request.method == "HEAD" else error)
        headers = {"Content-Type": media_type, "Docker-Content-Digest": sha256(content), **policy}
        if request.method == "HEAD":
            return httpx.Response(200, headers={**headers, "Content-Length": str(len(content))})
        return httpx.Response(200, headers=headers, content=content)


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def open_test_edge(
    tmp_path: Path, upstream: FakeUpstream, clock: FakeClock | None = None, **settings: Any
) -> AsyncIterator[EdgeContext]:
    config = EdgeSettings(upstream="http://upstream.test", cache_dir=str(tmp_path / "cache"), **settings)
    transport = httpx.MockTransport(upstream.handler)
    async with open_edge(config, clock=clock or FakeClock(), transport=transport) as app:
        yield app.ctx


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
