"""Pushes through the edge: write requests are relayed to the upstream, streamed both ways, never cached.

* The request body goes upstream piece by piece as the client sends it (``http.request`` messages → an async
  iterator handed to httpx), so memory stays bounded for monolithic and chunked uploads alike.
* The client's headers, ``Authorization`` included, are forwarded verbatim (minus hop-by-hop ones and ``Host``):
  the primary decides; the edge holds no push credentials. ``?ns=`` (containerd's mirror form) is dropped
  upstream and put back on a rewritten ``Location``.
* The primary's status, headers and body (OCI error envelopes included) come back as they are; ``Location``
  is rewritten to the path on this edge (absolute upstream URLs become relative paths).
* A client that disconnects mid-body aborts the upstream request, so the primary never completes the
  upload. Nothing of a push is cached; an accepted manifest PUT or DELETE by tag drops the edge's tag entry,
  so the next pull of that tag revalidates with the primary.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from urllib.parse import urlencode, urlsplit

import httpx

from edge.http import ClientDisconnected, Request, Response
from edge.index import SqliteEdgeIndex
from edge.upstream import Upstream, UpstreamUnavailable
from registry.oci import errors as e

log = logging.getLogger("edge.push")

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
MAX_REPLY_BYTES = 4 * 1024 * 1024  # push answers are headers plus at most an error envelope
UPLOAD_PATH = re.compile(r"^/v2/(?P<name>[^?#]+?)/blobs/uploads(/[^/]*)?$")
MANIFEST_PATH = re.compile(r"^/v2/(?P<name>[^?#]+?)/manifests/(?P<reference>[^/]+)$")
BLOB_PATH = re.compile(r"^/v2/(?P<name>[^?#]+?)/blobs/(?P<digest>[^/]+)$")


def is_push(method: str, path: str) -> bool:
    """Whether ``method path`` is relayed to the upstream (every upload request, every write)."""
    if UPLOAD_PATH.fullmatch(path) is not None:
        return True
    return method not in ("GET", "HEAD") and path.startswith("/v2/")


def _forward_headers(req: Request) -> list[tuple[str, str]]:
    pairs = [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in req.scope["headers"]]
    return [(name, value) for name, value in pairs if name not in _HOP_BY_HOP]


def _upstream_query(req: Request) -> str:
    pairs = [(k, v) for k, values in req.query.items() if k != "ns" for v in values]
    return urlencode(pairs)


def rewrite_location(location: str, upstream_base: str, ns: str | None) -> str:
    """``location`` from the upstream as a path on this edge (with ``ns=`` again when the client used it).

    A location on another host (e.g. a storage redirect) is left alone.
    """
    parts = urlsplit(location)
    base = urlsplit(upstream_base)
    if parts.netloc and parts.netloc != base.netloc:
        return location
    path = parts.path
    prefix = base.path.rstrip("/")
    if prefix and path.startswith(prefix + "/"):
        path = path[len(prefix) :]
    query = parts.query
    if ns is not None:
        query = f"{query}&{urlencode({'ns': ns})}" if query else urlencode({"ns": ns})
    return f"{path}?{query}" if query else path


async def _body(req: Request) -> AsyncIterator[bytes]:
    while True:
        message = await req.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


class PushRelay:
    """Relays write requests to the upstream and keeps the edge's tag cache honest about them."""

    def __init__(self, upstream: Upstream, index: SqliteEdgeIndex, upstream_base: str) -> None:
        self.upstream = upstream
        self.index = index
        self.upstream_base = upstream_base

    async def relay(self, req: Request) -> Response:
        """Send ``req`` upstream, streaming its body; the upstream's answer for the client.

        Raises:
            RegistryError: 400 ``MALFORMED_REQUEST`` for a path or header httpx cannot send.
            UpstreamUnavailable: the upstream could not be reached or failed before answering.
            ClientDisconnected: the client went away mid-body (the upstream request is aborted).
        """
        query = _upstream_query(req)
        url = f"{self.upstream_base.rstrip('/')}{req.path}" + (f"?{query}" if query else "")
        # One upstream connection per relayed request: found by the network fuzzer (tests/fuzz), a pooled
        # connection reused after a misbehaving client's relayed request could hang the next relay until the
        # read timeout (the primary still reading the earlier body). Pushes are few and large; the cost is a
        # TCP handshake per request.
        headers = [*_forward_headers(req), ("connection", "close")]
        length = req.header("content-length")
        if length is not None:
            headers.append(("content-length", length))
        has_body = length not in (None, "0") or req.header("transfer-encoding") is not None
        content = _body(req) if has_body else None
        self.upstream.metrics.upstream_requests += 1
        client = self.upstream.client
        try:
            request = client.build_request(req.method, url, headers=headers, content=content)
        except (httpx.InvalidURL, UnicodeEncodeError) as exc:  # control characters in the path, non-ASCII headers
            raise e.RegistryError(e.MALFORMED_REQUEST, f"{type(exc).__name__}: {str(exc)[:200]}") from None
        try:
            async with _Stream(client, request) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_REPLY_BYTES:
                        raise UpstreamUnavailable(f"{req.method} {req.path}: answer over {MAX_REPLY_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"{type(exc).__name__}: {exc}") from None
        out = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}
        if "location" in response.headers:
            out["location"] = rewrite_location(response.headers["location"], self.upstream_base, req.arg("ns"))
        await self._after(req, response.status_code)
        return Response(response.status_code, out, bytes(body))

    async def _after(self, req: Request, status: int) -> None:
        found = MANIFEST_PATH.fullmatch(req.path)
        if found is None or status >= 300 or req.method not in ("PUT", "DELETE"):
            return
        reference = found.group("reference")
        if ":" not in reference:  # a tag: the next pull revalidates it with the primary
            await self.index.drop_tag(found.group("name"), reference)


class _Stream:
    """``client.send(request, stream=True)`` as an async context manager, redirects not followed."""

    def __init__(self, client: httpx.AsyncClient, request: httpx.Request) -> None:
        self.client = client
        self.request = request
        self.response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        # auth=None: only the client's own Authorization goes upstream, never the edge's identity credential.
        self.response = await self.client.send(self.request, stream=True, follow_redirects=False, auth=None)
        return self.response

    async def __aexit__(self, *exc: object) -> None:
        if self.response is not None:
            await self.response.aclose()
