"""Blob routes: GET/HEAD (with Range) and DELETE ``/v2/<name>/blobs/<digest>``."""

from __future__ import annotations

from registry.api.context import ApiContext
from registry.api.http import Request, Response
from registry.oci.digest import Digest
from registry.oci.names import validate_name
from registry.oci.wire import parse_range


async def get_blob(ctx: ApiContext, req: Request) -> Response:
    repo = validate_name(req.params["name"])
    digest = Digest.parse(req.params["digest"])
    size = await ctx.service.blob_size(repo, digest)
    headers = {
        "Docker-Content-Digest": str(digest),
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
        "ETag": f'"{digest}"',
        "Cache-Control": "max-age=31536000",
    }
    byte_range = parse_range(req.header("range"), size)
    status, start, end = 200, 0, size - 1
    if byte_range is not None:
        status, start, end = 206, byte_range.start, byte_range.end
        headers["Content-Range"] = byte_range.content_range()
    headers["Content-Length"] = str(end - start + 1)
    service = ctx.service
    return Response(status, headers, stream=lambda: service.read_blob(digest, start, end))


async def delete_blob(ctx: ApiContext, req: Request) -> Response:
    repo = validate_name(req.params["name"])
    digest = Digest.parse(req.params["digest"])
    await ctx.service.delete_blob(repo, digest)
    return Response(202, {"Docker-Content-Digest": str(digest)})
