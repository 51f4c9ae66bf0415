"""``POST /edge/prefetch {"repository": R, "reference": TAG|DIGEST}``: warm the cache with an image (docs/edge.md).

Who may prefetch is decided exactly as a pull of R (``edge.authz``): a prefetch grants nothing a pull would not.
In passthrough mode the caller's credentials are checked and forwarded to the upstream; in identity mode the
edge's own account must be able to pull R; with ``auth_mode = "none"`` anyone may. The top manifest is fetched
before answering, so refusals and unknown images are ordinary OCI error answers; the rest streams as NDJSON
progress lines, the last of which is ``{"type": "done", …report}`` or ``{"type": "error", "code", "message"}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from typing import Any

import trio

from edge.api.context import EdgeContext
from edge.http import Request, Response
from edge.prefetch import Prefetcher
from edge.upstream import CLIENT_AUTHORIZATION
from registry.oci import errors as e
from registry.oci.names import parse_reference, validate_name

log = logging.getLogger("edge.prefetch")
MAX_BODY = 64 * 1024
PROGRESS_QUEUE = 64


async def read_json(req: Request) -> dict[str, Any]:
    body = bytearray()
    while True:
        message = await req.receive()
        if message["type"] != "http.request":
            raise e.RegistryError(e.INVALID, "the request body did not arrive")
        body += message.get("body", b"")
        if len(body) > MAX_BODY:
            raise e.RegistryError(e.REQUEST_TOO_LARGE)
        if not message.get("more_body", False):
            break
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise e.RegistryError(e.INVALID, 'expected {"repository": …, "reference": …}')
    return doc


async def prefetch(ctx: EdgeContext, req: Request) -> Response:
    if req.method != "POST":
        raise e.RegistryError(e.METHOD_NOT_ALLOWED)
    doc = await read_json(req)
    repo = validate_name(str(doc.get("repository", "")))
    reference = str(doc.get("reference") or "latest")
    parse_reference(reference)
    upstream_auth: str | None = None
    if ctx.authz is not None:
        header = ctx.settings.client_header_name.lower()
        client_header = req.header(header) if header else None
        upstream_auth = await ctx.authz.authorize(req.header("authorization"), client_header, repo)
    prefetcher = Prefetcher(ctx.manifests, ctx.blobs)
    reset = CLIENT_AUTHORIZATION.set(upstream_auth)
    try:
        await ctx.manifests.get(repo, reference)  # errors (404, 401, 503) answer with their status
    finally:
        CLIENT_AUTHORIZATION.reset(reset)

    async def stream() -> AsyncGenerator[bytes, None]:
        send, receive = trio.open_memory_channel[dict[str, Any]](PROGRESS_QUEUE)

        async def run() -> None:
            token = CLIENT_AUTHORIZATION.set(upstream_auth)
            try:
                async with send:
                    try:
                        report = await prefetcher.prefetch(repo, reference, send.send)
                        await send.send({"type": "done", **report.as_json()})
                    except e.RegistryError as err:
                        await send.send({"type": "error", "code": err.code.code, "message": err.message})
            finally:
                CLIENT_AUTHORIZATION.reset(token)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            async with receive:
                async for item in receive:
                    yield (json.dumps(item) + "\n").encode()

    ctx.metrics.prefetches += 1
    return Response(200, {"Content-Type": "application/x-ndjson", "Cache-Control": "no-cache"}, stream=stream)
