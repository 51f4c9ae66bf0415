"""Manifest routes: GET/HEAD ``/v2/<name>/manifests/<reference>``, byte for byte with the upstream's media type.

A manifest served from the cache while the upstream is unavailable (a tag past ``tag_ttl``, a digest past
``digest_ttl``) carries ``X-Edge-Stale: true``. The upstream's 403 ``DENIED`` (its pull policy) is relayed.
"""

from __future__ import annotations

import time

from edge.api.context import EdgeContext
from edge.http import Request, Response
from registry.oci.names import validate_name

STALE_HEADER = "X-Edge-Stale"


async def get_manifest(ctx: EdgeContext, req: Request) -> Response:
    repo = validate_name(req.params["name"])
    answer = await ctx.manifests.get(repo, req.params["reference"])
    manifest = answer.manifest
    headers = {
        "Content-Type": manifest.media_type,
        "Docker-Content-Digest": str(manifest.digest),
        "ETag": f'"{manifest.digest}"',
    }
    if answer.stale:
        headers[STALE_HEADER] = "true"
    if ctx.pulls is not None:
        ctx.pulls.record(repo, str(manifest.digest), time.time())
    return Response(200, headers, manifest.content, on_sent=ctx.metrics.served)
