"""Blob routes: GET/HEAD ``/v2/<name>/blobs/<digest>`` (with Range)."""

from __future__ import annotations

from edge.api.context import EdgeContext
from edge.http import Request, Response
from registry.oci.digest import Digest
from registry.oci.names import validate_name


def _headers(digest: Digest) -> dict[str, str]:
    return {
        "Docker-Content-Digest": str(digest),
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
        "ETag": f'"{digest}"',
        "Cache-Control": "max-age=31536000",
    }


async def get_blob(ctx: EdgeContext, req: Request) -> Response:
    repo = validate_name(req.params["name"])
    digest = Digest.parse(req.params["digest"])
    headers = _headers(digest)
    if req.method == "HEAD":
        size = await ctx.blobs.head(repo, digest)
        return Response(200, {**headers, "Content-Length": str(size)})
    body = await ctx.blobs.get(repo, digest, req.header("range"))
    status = 200
    if body.byte_range is not None:
        status = 206
        headers["Content-Range"] = body.byte_range.content_range()
    headers["Content-Length"] = str(body.length)
    return Response(status, headers, stream=body.stream, on_sent=ctx.metrics.served, on_close=body.close)
