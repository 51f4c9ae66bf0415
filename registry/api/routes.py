"""The /v2 route table and the raw-ASGI entry point that renders every error as an OCI envelope.

Anything outside /v2 is passed to ``fallback`` (the Quart app: health and, later, management).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

import trio

from registry.api import access, blobs, listing, manifests, token, uploads
from registry.api.audit_events import audit_request
from registry.api.auth import Authorizer
from registry.api.context import ApiContext
from registry.api.http import Receive, Request, Response, Scope, Send, send_response
from registry.oci import errors as e
from registry.oci.names import validate_name
from registry.storage.service import ClientDisconnected

log = logging.getLogger("registry.api")

Handler = Callable[[ApiContext, Request], Awaitable[Response]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}


async def api_base(ctx: ApiContext, req: Request) -> Response:
    return Response(200, {"Content-Type": "application/json"}, b"{}")


_NAME = r"(?P<name>[^?#]+?)"
ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
    (re.compile(r"^/v2/?$"), {"GET": api_base}),
    (re.compile(r"^/v2/_catalog$"), {"GET": listing.catalog}),
    (re.compile(rf"^/v2/{_NAME}/tags/list$"), {"GET": listing.list_tags}),
    (
        re.compile(rf"^/v2/{_NAME}/manifests/(?P<reference>[^/]+)$"),
        {"GET": manifests.get_manifest, "PUT": manifests.put_manifest, "DELETE": manifests.delete_manifest},
    ),
    (re.compile(rf"^/v2/{_NAME}/blobs/uploads/?$"), {"POST": uploads.start_upload}),
    (
        re.compile(rf"^/v2/{_NAME}/blobs/uploads/(?P<uuid>[^/]+)$"),
        {
            "GET": uploads.upload_status,
            "PATCH": uploads.patch_upload,
            "PUT": uploads.finish_upload,
            "DELETE": uploads.cancel_upload,
        },
    ),
    (re.compile(rf"^/v2/{_NAME}/blobs/(?P<digest>[^/]+)$"), {"GET": blobs.get_blob, "DELETE": blobs.delete_blob}),
    (re.compile(rf"^/v2/{_NAME}/referrers/(?P<digest>[^/]+)$"), {"GET": listing.referrers}),
]


TOKEN_ROUTES: dict[str, dict[str, Callable[[ApiContext, Request, Authorizer], Awaitable[Response]]]] = {
    "/token": {"GET": token.token_get, "POST": token.token_post},
    "/token/jwks.json": {"GET": token.jwks},
    "/.well-known/jwks.json": {"GET": token.jwks},
}


DRAIN_LIMIT = 8 * 1024 * 1024
DRAIN_SECONDS = 10.0


async def settle_body(req: Request, response: Response) -> None:
    """Before an error answer, read what is left of the request body (up to 8 MiB, 10 s) so the client is
    not blocked writing it; past that, close the connection after the answer."""
    if req.body_complete:
        return
    complete = False
    with trio.move_on_after(DRAIN_SECONDS):
        try:
            complete = await req.drain(DRAIN_LIMIT)
        except ClientDisconnected:
            return
    if not complete:
        response.headers["Connection"] = "close"


def match(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    """Find the handler for ``method path``. HEAD is served by the GET handler.

    Raises:
        RegistryError: 404 ``NOT_FOUND`` or 405 ``UNSUPPORTED``.
    """
    lookup = "GET" if method == "HEAD" else method
    for pattern, methods in ROUTES:
        found = pattern.fullmatch(path)
        if found is None:
            continue
        handler = methods.get(lookup)
        if handler is None:
            raise e.RegistryError(e.METHOD_NOT_ALLOWED, headers={"Allow": ", ".join(sorted(methods))})
        return handler, found.groupdict()
    raise e.RegistryError(e.NOT_FOUND, detail={"path": path[:200]})


class RegistryAsgi:
    """The ASGI application: /v2 handled here, everything else by ``fallback``."""

    def __init__(self, ctx: ApiContext, fallback: ASGIApp) -> None:
        self.ctx = ctx
        self.fallback = fallback

    async def _token_response(self, req: Request) -> Response:
        auth = self.ctx.auth
        assert auth is not None
        methods = TOKEN_ROUTES[req.path]
        handler = methods.get("GET" if req.method == "HEAD" else req.method)
        if handler is None:
            raise e.RegistryError(e.METHOD_NOT_ALLOWED, headers={"Allow": ", ".join(sorted(methods))})
        return await handler(self.ctx, req, auth)

    async def _v2_response(self, req: Request) -> Response:
        handler, req.params = match(req.method, req.path)
        if self.ctx.auth is not None:
            await self._authorize(handler, req)
        response = await handler(self.ctx, req)
        response.headers.update(API_VERSION)
        return response

    async def _authorize(self, handler: Handler, req: Request) -> None:
        auth = self.ctx.auth
        assert auth is not None
        scopes = access.needed(handler, req)
        if scopes and scopes[0][0].type == "repository":
            validate_name(scopes[0][0].name)
        req.auth = await auth.authorize(self.ctx, req, scopes)
        if not scopes and req.auth.identity.anonymous:
            raise auth.challenge_error(self.ctx, req)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.fallback(scope, receive, send)
            return
        path = scope["path"]
        if path in TOKEN_ROUTES and self.ctx.auth is not None:
            await self._serve(Request(scope, receive), send, self._token_response)
            return
        if not (path == "/v2" or path.startswith("/v2/")):
            await self.fallback(scope, receive, send)
            return
        await self._serve(Request(scope, receive), send, self._v2_response)

    async def _serve(self, req: Request, send: Send, respond: Callable[[Request], Awaitable[Response]]) -> None:
        """Run ``respond`` and send its answer; every error becomes an OCI envelope with its status."""
        try:
            response = await respond(req)
        except e.RegistryError as err:
            response = Response.error(err)
            if req.path.startswith("/v2"):
                response.headers.update(API_VERSION)
        except ClientDisconnected:
            return
        except Exception:
            log.exception("unhandled error on %s %s", req.method, req.path)
            response = Response.error(e.RegistryError(e.UNKNOWN))
        if response.status >= 400:
            await settle_body(req, response)
        await audit_request(self.ctx, req, response)
        await send_response(send, response, req.method == "HEAD")
