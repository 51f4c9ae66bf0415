"""A minimal raw-ASGI request/response layer for the OCI API.

Why not Quart for /v2: Quart copies request bodies into an unbounded buffer (no backpressure), rejects
bodies over MAX_CONTENT_LENGTH before the view runs, cuts bodies after BODY_TIMEOUT and silently
truncates responses after RESPONSE_TIMEOUT, and answers an explicit HEAD with Content-Length: 0. Blob
data must stream with bounded memory for hours, so /v2 is served by these small handlers: the request
body is an async iterator over hypercorn's bounded receive queue (backpressure reaches the socket), and
responses are sent in pieces of at most 1 MiB as the client reads them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from registry.oci import errors as e
from registry.storage.service import ClientDisconnected

if TYPE_CHECKING:
    from registry.api.auth import AuthResult

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class Request:
    """One HTTP request: parsed line and headers, with the body left on the wire until iterated."""

    scope: Scope
    receive: Receive
    params: dict[str, str] = field(default_factory=dict)
    auth: AuthResult | None = None  # set when authentication is on

    def __post_init__(self) -> None:
        self.method: str = self.scope["method"]
        self.path: str = self.scope["path"]
        self.query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        self._headers: dict[str, list[str]] = {}
        for raw_name, raw_value in self.scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            self._headers.setdefault(name, []).append(raw_value.decode("latin-1"))
        self._body_started = False
        self.body_complete = False

    def header(self, name: str) -> str | None:
        values = self._headers.get(name)
        return values[0] if values else None

    def headers_all(self, name: str) -> list[str]:
        return self._headers.get(name, [])

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    @property
    def client_host(self) -> str:
        client = self.scope.get("client")
        return str(client[0]) if client else ""

    def content_length(self) -> int | None:
        """The declared body length; raises ``SIZE_INVALID`` for a malformed or negative value."""
        value = self.header("content-length")
        if value is None:
            return None
        if not value.strip().isdigit():
            raise e.RegistryError(e.SIZE_INVALID, "invalid Content-Length")
        return int(value)

    async def body(self) -> AsyncIterator[bytes]:
        """The request body, piece by piece as hypercorn receives it.

        Raises:
            ClientDisconnected: the client went away before the body ended.
        """
        if self._body_started:
            return
        self._body_started = True
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            chunk = message.get("body", b"")
            if not message.get("more_body", False):
                self.body_complete = True
            if chunk:
                yield chunk
            if self.body_complete:
                return

    async def read(self, limit: int, too_large: e.ErrorCode = e.REQUEST_TOO_LARGE) -> bytes:
        """The whole body, refusing more than ``limit`` bytes with ``too_large``."""
        declared = self.content_length()
        if declared is not None and declared > limit:
            raise e.RegistryError(too_large, detail={"limit": limit})
        data = bytearray()
        async for chunk in self.body():
            data += chunk
            if len(data) > limit:
                raise e.RegistryError(too_large, detail={"limit": limit})
        return bytes(data)

    @property
    def has_body(self) -> bool:
        return (self.content_length() or 0) > 0 or "chunked" in (self.header("transfer-encoding") or "").lower()

    async def drain(self, limit: int | None = None) -> bool:
        """Consume the rest of an unwanted body (up to ``limit`` bytes) so the connection can be reused.
        Returns True when the body was consumed completely."""
        drained = 0
        while not self.body_complete and (self.has_body or self._body_started):
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.body_complete = True
            elif limit is not None and drained > limit:
                return False
        self._body_started = True
        return True


StreamFactory = Callable[[], AsyncGenerator[bytes, None]]


@dataclass
class Response:
    """A response: ``body`` bytes, or ``stream`` (whose length must be in ``Content-Length``)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: StreamFactory | None = None

    @classmethod
    def error(cls, err: e.RegistryError) -> Response:
        body = e.envelope(err)
        headers = {"Content-Type": "application/json", **err.headers}
        return cls(err.status, headers, body)


def _encode_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def send_response(send: Send, response: Response, head: bool) -> None:
    """Send ``response``; for HEAD only the headers (``Content-Length`` kept as for GET).

    A stream that fails after the headers went out propagates the exception: the server then drops the
    connection, which the client detects from the short body.
    """
    headers = dict(response.headers)
    if response.stream is None:
        headers.setdefault("Content-Length", str(len(response.body)))
    await send({"type": "http.response.start", "status": response.status, "headers": _encode_headers(headers)})
    if head or response.stream is None:
        await send({"type": "http.response.body", "body": b"" if head else response.body})
        return
    # Pieces come from the page cache on this thread (FilesystemBlobReader), so there is nothing to overlap:
    # a prefetching task and channel cost more per piece than they saved (docs/performance.md).
    async with aclosing(response.stream()) as pieces:  # closes the file even when the client goes away
        async for piece in pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
