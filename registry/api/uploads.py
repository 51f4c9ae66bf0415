"""Upload routes: POST (session, monolithic, mount), GET status, PATCH chunk, PUT finish, DELETE cancel."""

from __future__ import annotations

from registry.api.context import ApiContext
from registry.api.http import Request, Response
from registry.oci import errors as e
from registry.oci.digest import Digest
from registry.oci.names import validate_name
from registry.oci.wire import parse_upload_range, upload_range_header


def _session_headers(ctx: ApiContext, req: Request, repo: str, upload_id: str, size: int) -> dict[str, str]:
    headers = {
        "Location": f"{ctx.base_url(req)}/v2/{repo}/blobs/uploads/{upload_id}",
        "Range": upload_range_header(size),
        "Docker-Upload-UUID": upload_id,
    }
    if ctx.settings.limits.chunk_min_length:
        headers["OCI-Chunk-Min-Length"] = str(ctx.settings.limits.chunk_min_length)
    return headers


def _created(ctx: ApiContext, req: Request, repo: str, digest: Digest) -> Response:
    return Response(
        201, {"Location": f"{ctx.base_url(req)}/v2/{repo}/blobs/{digest}", "Docker-Content-Digest": str(digest)}
    )


def _digest_arg(req: Request) -> Digest:
    value = req.arg("digest")
    if not value:
        raise e.RegistryError(e.DIGEST_INVALID, "the digest query parameter is required")
    return Digest.parse(value)


async def start_upload(ctx: ApiContext, req: Request) -> Response:
    repo = validate_name(req.params["name"])
    mount, source = req.arg("mount"), req.arg("from")
    if mount is not None:
        digest = Digest.parse(mount)
        may_read_source = source and (req.auth is None or req.auth.allows(source, "pull"))
        if may_read_source and source and await ctx.service.mount_blob(repo, source, digest):
            await req.drain()
            return _created(ctx, req, repo, digest)
    elif req.arg("digest") is not None:
        digest = _digest_arg(req)
        await ctx.service.push_monolithic(repo, digest, req.body(), req.content_length())
        return _created(ctx, req, repo, digest)
    await req.drain()
    session = await ctx.service.start_upload(repo)
    return Response(202, _session_headers(ctx, req, repo, session.id, 0))


async def upload_status(ctx: ApiContext, req: Request) -> Response:
    repo = validate_name(req.params["name"])
    session = await ctx.service.upload(repo, req.params["uuid"])
    return Response(204, _session_headers(ctx, req, repo, session.id, session.size))


async def _content_range(ctx: ApiContext, req: Request, repo: str, upload_id: str) -> tuple[int, int] | None:
    raw_range = req.header("content-range")
    if raw_range is None:
        return None
    content_range = parse_upload_range(raw_range)
    if content_range is None:
        session = await ctx.service.upload(repo, upload_id)
        raise e.RegistryError(
            e.RANGE_INVALID,
            f"malformed Content-Range {raw_range[:100]!r}",
            headers={"Range": upload_range_header(session.size)},
        )
    return content_range


async def patch_upload(ctx: ApiContext, req: Request) -> Response:
    repo = validate_name(req.params["name"])
    upload_id = req.params["uuid"]
    content_range = await _content_range(ctx, req, repo, upload_id)
    size = await ctx.service.append_chunk(repo, upload_id, req.body(), content_range, req.content_length())
    return Response(202, _session_headers(ctx, req, repo, upload_id, size))


async def finish_upload(ctx: ApiContext, req: Request) -> Response:
    repo = validate_name(req.params["name"])
    digest = _digest_arg(req)
    content_range = await _content_range(ctx, req, repo, req.params["uuid"])
    await ctx.service.finish_upload(repo, req.params["uuid"], digest, req.body(), req.content_length(), content_range)
    return _created(ctx, req, repo, digest)


async def cancel_upload(ctx: ApiContext, req: Request) -> Response:
    repo = validate_name(req.params["name"])
    await ctx.service.cancel_upload(repo, req.params["uuid"])
    return Response(204)
