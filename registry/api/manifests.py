"""Manifest routes: GET/HEAD/PUT/DELETE ``/v2/<name>/manifests/<reference>``.

Manifests are served byte for byte with their stored media type whatever the Accept header says
(Distribution's 404 on an Accept mismatch breaks clients that list fewer types than they can read).
"""

from __future__ import annotations

from registry.api.context import ApiContext
from registry.api.http import Request, Response
from registry.api.pullgate import POLICY_HEADER
from registry.oci import errors as e
from registry.oci.names import validate_name


async def get_manifest(ctx: ApiContext, req: Request) -> Response:
    repo = validate_name(req.params["name"])
    record = await ctx.service.get_manifest(repo, req.params["reference"])
    headers = {
        "Content-Type": record.media_type,
        "Docker-Content-Digest": str(record.digest),
        "ETag": f'"{record.digest}"',
    }
    if ctx.pull_gate is not None:
        decision = await ctx.pull_gate.check(repo, record)
        policy = {POLICY_HEADER: decision.policy} if decision.policy is not None else {}
        if decision.refusal is not None:
            detail = {"name": repo, "digest": str(record.digest)}
            raise e.RegistryError(e.DENIED, decision.refusal, detail, policy)
        headers.update(policy)
    ctx.service.pulled(repo, record)
    return Response(200, headers, record.content)


async def put_manifest(ctx: ApiContext, req: Request) -> Response:
    repo = validate_name(req.params["name"])
    data = await req.read(ctx.settings.limits.manifest_max_bytes, e.MANIFEST_TOO_LARGE)
    pushed = await ctx.service.put_manifest(repo, req.params["reference"], req.header("content-type"), data)
    headers = {
        "Location": f"{ctx.base_url(req)}/v2/{repo}/manifests/{pushed.digest}",
        "Docker-Content-Digest": str(pushed.digest),
    }
    if pushed.subject is not None:
        headers["OCI-Subject"] = str(pushed.subject)
    return Response(201, headers)


async def delete_manifest(ctx: ApiContext, req: Request) -> Response:
    repo = validate_name(req.params["name"])
    await ctx.service.delete_manifest(repo, req.params["reference"])
    return Response(202)
