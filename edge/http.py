"""The edge's raw-ASGI request/response layer (the same shape as the primary's ``registry/api/http.py``, which
the edge may not import).

Responses stream in pieces as the client reads them. While a streamed body is being sent, the client's
``http.disconnect`` is watched: hypercorn silently drops sends to a closed connection, so without the watch a
disconnected client would keep its stream (and a file handle) busy until the end of the blob.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import trio

from registry.oci import errors as e

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
StreamFactory = Callable[[], AsyncGenerator[bytes, None]]


class ClientDisconnected(Exception):
    """The client closed the connection before the response was complete."""


@dataclass
class Request:
    """One HTTP request: method, path, query and headers (GET/HEAD requests on the edge carry no body)."""

    scope: Scope
    receive: Receive
    params: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.method: str = self.scope["method"]
        self.path: str = self.scope["path"]
        self.query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        self._headers: dict[str, list[str]] = {}
        for raw_name, raw_value in self.scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            self._headers.setdefault(name, []).append(raw_value.decode("latin-1"))

    def header(self, name: str) -> str | None:
        values = self._headers.get(name)
        return values[0] if values else None

    def headers_all(self, name: str) -> list[str]:
        return self._headers.get(name, [])

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def query_string(self) -> str:
        return str(self.scope.get("query_string", b"").decode("latin-1"))


@dataclass
class Response:
    """A response: ``body`` bytes, or ``stream`` (whose length must be in ``Content-Length``).

    ``on_sent`` is called with the number of body bytes handed to the server (metrics); ``on_close`` once the
    response is finished with, sent or not (releases what ``stream`` would have read).
    """

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: StreamFactory | None = None
    on_sent: Callable[[int], None] | None = None
    on_close: Callable[[], None] | None = None

    @classmethod
    def error(cls, err: e.RegistryError) -> Response:
        return cls(err.status, {"Content-Type": "application/json", **err.headers}, e.envelope(err))


def _encode_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def _watch_disconnect(receive: Receive, scope: trio.CancelScope, flag: list[bool]) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            flag.append(True)
            scope.cancel()
            return


async def send_response(send: Send, receive: Receive, response: Response, head: bool) -> None:
    """Send ``response``; for HEAD only the headers (``Content-Length`` kept as for GET).

    Raises:
        ClientDisconnected: the client went away while the body was streaming (the stream was closed).
        Exception: whatever the stream raised after the headers went out; the server then drops the
            connection, so the client sees a short body, never a complete response with wrong bytes.
    """
    headers = dict(response.headers)
    if response.stream is None:
        headers.setdefault("Content-Length", str(len(response.body)))
    await send({"type": "http.response.start", "status": response.status, "headers": _encode_headers(headers)})
    if head or response.stream is None:
        body = b"" if head else response.body
        await send({"type": "http.response.body", "body": body})
        if response.on_sent is not None:
            response.on_sent(len(body))
        return
    sent = 0
    disconnected: list[bool] = []
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_disconnect, receive, nursery.cancel_scope, disconnected)
            stream = response.stream()
            try:
                async for piece in stream:
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
                    sent += len(piece)
            finally:
                await stream.aclose()
            nursery.cancel_scope.cancel()
    finally:
        if response.on_sent is not None:
            response.on_sent(sent)
    if disconnected:
        raise ClientDisconnected()
    await send({"type": "http.response.body", "body": b""})
