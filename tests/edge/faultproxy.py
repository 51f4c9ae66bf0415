"""A fault-injecting reverse proxy in front of a registry, run as its own process for edge tests.

    python -m tests.edge.faultproxy --upstream URL

It logs ``faultproxy listening on URL`` and forwards every request, streaming. Faults are set with
``POST /_fault`` and a JSON body: ``{"corrupt": [digest, ...]}`` flips one byte in the middle of those blobs'
bodies (length unchanged), ``{"status": 503}`` answers every /v2 request with that status (0: forward again),
``{"delay": 3.0}`` waits that long before answering each /v2 request (a slow upstream), ``{"reset": [digest]}``
sends half of those blobs' bodies and then drops the connection (a reset mid-body).
``GET /_fault/requests`` lists ``[method, path]`` of every forwarded /v2 request.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.client = httpx.AsyncClient(base_url=upstream, timeout=60)
        self.corrupt: set[str] = set()
        self.status = 0
        self.delay = 0.0
        self.reset: set[str] = set()
        self.requests: list[tuple[str, str]] = []

    async def _json(self, send: Any, status: int, doc: Any) -> None:
        body = json.dumps(doc).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if path == "/_fault" and method == "POST":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            doc = json.loads(body or b"{}")
            self.corrupt = set(doc.get("corrupt", self.corrupt))
            self.status = int(doc.get("status", self.status))
            self.delay = float(doc.get("delay", self.delay))
            self.reset = set(doc.get("reset", self.reset))
            state = {"corrupt": sorted(self.corrupt), "status": self.status, "delay": self.delay}
            await self._json(send, 200, state | {"reset": sorted(self.reset)})
            return
        if path == "/_fault/requests":
            await self._json(send, 200, self.requests)
            return
        self.requests.append((method, path))
        if self.delay:
            await trio.sleep(self.delay)
        if self.status:
            await self._json(send, self.status, {"errors": [{"code": "UNAVAILABLE", "message": "fault"}]})
            return
        await self._forward(scope, send)

    async def _forward(self, scope: dict[str, Any], send: Any) -> None:
        query = scope.get("query_string", b"").decode()
        url = scope["path"] + (f"?{query}" if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k.decode().lower() not in HOP_HEADERS]
        request = self.client.build_request(scope["method"], url, headers=headers)
        response = await self.client.send(request, stream=True)
        try:
            out = [
                (k, v) for k, v in response.headers.raw if k.decode().lower() not in HOP_HEADERS - {"content-length"}
            ]
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})
            corrupt_at = reset_at = -1
            half = int(response.headers.get("content-length", "0")) // 2
            if any(scope["path"].endswith(f"/blobs/{d}") for d in self.corrupt):
                corrupt_at = half
            if scope["method"] == "GET" and any(scope["path"].endswith(f"/blobs/{d}") for d in self.reset):
                reset_at = half
            offset = 0
            async for chunk in self._chunks(response):
                if 0 <= reset_at < offset + len(chunk):
                    await send({"type": "http.response.body", "body": chunk[: reset_at - offset], "more_body": True})
                    raise ConnectionResetError("faultproxy: reset mid-body")  # hypercorn drops the connection
                if offset <= corrupt_at < offset + len(chunk):
                    i = corrupt_at - offset
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1 :]
                offset += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    async def _chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        async for chunk in response.aiter_raw():
            yield chunk


async def main(upstream: str) -> None:
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.alpn_protocols = ["http/1.1"]
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, FaultProxy(upstream), config))  # type: ignore[arg-type]
        print(f"faultproxy listening on {binds[0]}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    logging.basicConfig(level=logging.WARNING)
    trio.run(main, parser.parse_args().upstream)
