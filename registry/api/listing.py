"""Listing routes: tags list, catalog and referrers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from registry.api.context import ApiContext, page_args
from registry.api.http import Request, Response
from registry.oci import errors as e
from registry.oci import mediatypes as mt
from registry.oci.digest import Digest
from registry.oci.names import namespace_of, validate_name
from registry.oci.wire import next_link

JSON = {"Content-Type": "application/json"}


def _json(status: int, doc: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, {**JSON, **(headers or {})}, json.dumps(doc, separators=(",", ":")).encode())


async def list_tags(ctx: ApiContext, req: Request) -> Response:
    repo = validate_name(req.params["name"])
    if ctx.auth is not None and req.auth is not None and not await ctx.auth.can_list(req.auth, repo):
        raise e.RegistryError(e.DENIED, f"listing tags of {repo} needs the list permission")
    n, last = page_args(ctx, req)
    tags = await ctx.service.list_tags(repo, n + 1, last) if n else await ctx.service.list_tags(repo, 0, last)
    headers = {}
    if n and len(tags) > n:
        tags = tags[:n]
        headers["Link"] = next_link(f"{ctx.base_url(req)}/v2/{repo}/tags/list", n, tags[-1])
    return _json(200, {"name": repo, "tags": tags}, headers)


async def catalog(ctx: ApiContext, req: Request) -> Response:
    n, last = page_args(ctx, req)
    if ctx.auth is not None and req.auth is not None:
        visible = await ctx.auth.listable_namespaces(req.auth)
        repos = await _filtered_catalog(ctx, n + 1, last, visible) if n else []
    else:
        repos = await ctx.service.catalog(n + 1, last) if n else []
    headers = {}
    if n and len(repos) > n:
        repos = repos[:n]
        headers["Link"] = next_link(f"{ctx.base_url(req)}/v2/_catalog", n, repos[-1])
    return _json(200, {"repositories": repos}, headers)


async def _filtered_catalog(ctx: ApiContext, limit: int, last: str | None, visible: Callable[[str], bool]) -> list[str]:
    """Up to ``limit`` repositories after ``last`` whose namespace passes ``visible``."""
    found: list[str] = []
    cursor = last
    while len(found) < limit:
        batch = await ctx.service.catalog(max(limit, 100), cursor)
        found.extend(r for r in batch if visible(namespace_of(r)))
        if len(batch) < max(limit, 100):
            break
        cursor = batch[-1]
    return found[:limit]


async def referrers(ctx: ApiContext, req: Request) -> Response:
    repo = validate_name(req.params["name"])
    subject = Digest.parse(req.params["digest"])
    artifact_type = req.arg("artifactType") or None
    found = await ctx.service.referrers(repo, subject, artifact_type)
    manifests = []
    for ref in found:
        item: dict[str, Any] = {"mediaType": ref.media_type, "digest": str(ref.digest), "size": ref.size}
        if ref.artifact_type:
            item["artifactType"] = ref.artifact_type
        if ref.annotations_json:
            item["annotations"] = json.loads(ref.annotations_json)
        manifests.append(item)
    headers = {"Content-Type": mt.OCI_INDEX}
    if artifact_type is not None:
        headers["OCI-Filters-Applied"] = "artifactType"
    doc = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests}
    return Response(200, headers, json.dumps(doc, separators=(",", ":")).encode())
