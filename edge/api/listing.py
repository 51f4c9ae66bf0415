"""Tags list and referrers: passed through to the upstream (not cached in this version).

Pagination ``Link`` headers are made relative, so clients follow them to the edge, not around it.
"""

from __future__ import annotations

import re

from edge.api.context import EdgeContext
from edge.http import Request, Response
from edge.upstream import relayed_error
from registry.oci import errors as e
from registry.oci.digest import Digest
from registry.oci.names import validate_name

_ABSOLUTE_LINK = re.compile(r"<https?://[^/>]+(/[^>]*)>")
_PASSED_HEADERS = ("content-type", "oci-filters-applied")


def _query_without_ns(req: Request) -> str:
    parts = [p for p in req.query_string.split("&") if p and not p.startswith("ns=")]
    return "?" + "&".join(parts) if parts else ""


async def _relay(ctx: EdgeContext, req: Request, default: e.ErrorCode) -> Response:
    reply = await ctx.upstream.request("GET", req.path + _query_without_ns(req))
    if reply.status != 200:
        raise relayed_error(reply.status, reply.content, default)
    headers = {name: reply.headers[name] for name in _PASSED_HEADERS if name in reply.headers}
    link = reply.headers.get("link")
    if link:
        headers["Link"] = _ABSOLUTE_LINK.sub(r"<\1>", link)
    return Response(200, headers, reply.content, on_sent=ctx.metrics.served)


async def list_tags(ctx: EdgeContext, req: Request) -> Response:
    validate_name(req.params["name"])
    return await _relay(ctx, req, e.NAME_UNKNOWN)


async def referrers(ctx: EdgeContext, req: Request) -> Response:
    validate_name(req.params["name"])
    Digest.parse(req.params["digest"])
    return await _relay(ctx, req, e.MANIFEST_UNKNOWN)
