"""What each /v2 route needs, as token scopes: ``[(scope, required)]``.

``required=False`` marks a scope that only shapes the challenge: a cross-repository mount asks for pull on
the source too (``repository:dst:pull,push repository:src:pull``), otherwise clients request a token
without it and every mount silently degrades to an upload.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from registry.api import blobs, listing, manifests, uploads
from registry.api.context import ApiContext
from registry.api.http import Request, Response
from registry.oci.scope import Scope

Handler = Callable[[ApiContext, Request], Awaitable[Response]]
Needed = list[tuple[Scope, bool]]
CATALOG = Scope("registry", "catalog", ("*",))


def _repo(req: Request, *actions: str) -> Needed:
    return [(Scope("repository", req.params["name"], actions), True)]


def _upload_start(req: Request) -> Needed:
    needed = _repo(req, "pull", "push")
    source = req.arg("from")
    if req.arg("mount") and source:
        needed.append((Scope("repository", source, ("pull",)), False))
    return needed


_PULL: Callable[[Request], Needed] = lambda req: _repo(req, "pull")  # noqa: E731
_PUSH: Callable[[Request], Needed] = lambda req: _repo(req, "pull", "push")  # noqa: E731
_DELETE: Callable[[Request], Needed] = lambda req: _repo(req, "delete")  # noqa: E731

NEEDS: dict[Handler, Callable[[Request], Needed]] = {
    listing.catalog: lambda req: [(CATALOG, True)],
    listing.list_tags: _PULL,
    listing.referrers: _PULL,
    manifests.get_manifest: _PULL,
    manifests.put_manifest: _PUSH,
    manifests.delete_manifest: _DELETE,
    blobs.get_blob: _PULL,
    blobs.delete_blob: _DELETE,
    uploads.start_upload: _upload_start,
    uploads.upload_status: _PUSH,
    uploads.patch_upload: _PUSH,
    uploads.finish_upload: _PUSH,
    uploads.cancel_upload: _PUSH,
}


def needed(handler: Handler, req: Request) -> Needed:
    """Scopes ``handler`` needs for ``req``; ``[]`` for /v2/ itself (any authenticated caller)."""
    fn = NEEDS.get(handler)
    return fn(req) if fn is not None else []
