"""The edge's raw-ASGI entry point: the /v2 pull routes, ``ns`` mapping, ``/edge/*``, and one error renderer.

* ``?ns=<registry host>`` (containerd's mirror requests) must name an upstream (``EdgeContext.names`` of the
  default context or of a further upstream's); anything else is answered 404 at once, without asking anyone, so
  containerd falls back to the next host.
* Without ``ns``, a GET/HEAD ``/v2/<name>/<repo>/...`` whose first component is such a name (podman/CRI-O
  mirrors, which send no ``ns``) goes to that upstream as ``/v2/<repo>/...``; anything else to the default one.
  Pushes go to the default upstream only.
* Every /v2 request is decided by ``EdgeContext.authz`` (``edge.authz``) after routing, cache hits included; the
  upstream requests made for it carry what the decision returned (``edge.upstream.CLIENT_AUTHORIZATION``).
* GET and HEAD are served from the cache; uploads and every write method are relayed to the upstream
  (:mod:`edge.push`).
* A stream that fails after the headers went out (a fill whose digest did not verify) ends the response
  without its final piece: hypercorn then closes the connection and the client sees a short body.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable

from edge.api import blobs, listing, manifests, prefetch
from edge.api.context import EdgeContext
from edge.fill import FillFailed
from edge.http import ClientDisconnected, Receive, Request, Response, Scope, Send, send_response
from edge.push import is_push
from edge.upstream import CLIENT_AUTHORIZATION
from registry.oci import errors as e

log = logging.getLogger("edge.api")

Handler = Callable[[EdgeContext, Request], Awaitable[Response]]
API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
JSON = {"Content-Type": "application/json"}


async def api_base(ctx: EdgeContext, req: Request) -> Response:
    return Response(200, dict(JSON), b"{}")


async def stats(ctx: EdgeContext, req: Request) -> Response:
    volume, count = await ctx.cache.usage()
    doc = {
        **ctx.metrics.snapshot(),
        "cache_bytes": volume,
        "cache_blobs": count,
        "cache_limit_bytes": ctx.cache.limit,
        "fills_in_flight": len(ctx.blobs.flights),
        "reserved_bytes": ctx.cache.reserved,
    }
    if ctx.pulls is not None:
        doc |= {
            "pull_reports_pending": len(ctx.pulls.pending),
            "pull_reports_sent": ctx.pulls.reported,
            "pull_reports_failed": ctx.pulls.failures,
            "pull_reports_dropped": ctx.pulls.dropped,
        }
    return Response(200, dict(JSON), json.dumps(doc).encode())


async def health(ctx: EdgeContext, req: Request) -> Response:
    return Response(200, dict(JSON), b'{"status":"ok"}')


_NAME = r"(?P<name>[^?#]+?)"
ROUTES: list[tuple[re.Pattern[str], Handler]] = [
    (re.compile(r"^/v2/?$"), api_base),
    (re.compile(rf"^/v2/{_NAME}/tags/list$"), listing.list_tags),
    (re.compile(rf"^/v2/{_NAME}/manifests/(?P<reference>[^/]+)$"), manifests.get_manifest),
    (re.compile(rf"^/v2/{_NAME}/blobs/(?P<digest>[^/]+)$"), blobs.get_blob),
    (re.compile(rf"^/v2/{_NAME}/referrers/(?P<digest>[^/]+)$"), listing.referrers),
]
EDGE_ROUTES: dict[str, Handler] = {"/edge/stats": stats, "/edge/health": health, "/edge/prefetch": prefetch.prefetch}


def match(path: str) -> tuple[Handler, dict[str, str]]:
    """The handler for a GET/HEAD of ``path``.

    Raises:
        RegistryError: 404 ``NOT_FOUND``.
    """
    for pattern, handler in ROUTES:
        found = pattern.fullmatch(path)
        if found is not None:
            return handler, found.groupdict()
    raise e.RegistryError(e.NOT_FOUND, detail={"path": path[:200]})


class EdgeAsgi:
    """The ASGI application of an edge node."""

    def __init__(self, ctx: EdgeContext, extras: list[EdgeContext] | None = None) -> None:
        self.ctx = ctx
        self.by_name = {name: ctx for ctx in [ctx, *(extras or [])] for name in ctx.names}

    def _select(self, req: Request) -> EdgeContext:
        """The context of the upstream ``req`` is for, ``req.path`` stripped of a path prefix.

        Raises:
            RegistryError: 404 ``NAME_UNKNOWN`` for an ``ns`` no upstream answers to.
        """
        ns = req.arg("ns")
        if ns is not None:
            found = self.by_name.get(ns)
            if found is None:
                self.ctx.metrics.unknown_ns += 1
                raise e.RegistryError(e.NAME_UNKNOWN, f"this edge does not mirror {ns[:200]!r}")
            return found
        first, sep, rest = req.path.removeprefix("/v2/").partition("/")
        found = self.by_name.get(first) if sep and req.method in ("GET", "HEAD") else None
        if found is not None and any(p.fullmatch(f"/v2/{rest}") for p, _ in ROUTES[1:]):
            req.path = f"/v2/{rest}"
            return found
        return self.ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        req = Request(scope, receive)
        try:
            response = await self._respond(req)
        except ClientDisconnected:
            return
        except e.RegistryError as err:
            response = Response.error(err)
        except Exception:
            log.exception("unhandled error on %s %s", req.method, req.path)
            response = Response.error(e.RegistryError(e.UNKNOWN))
        if req.path.startswith("/v2"):
            response.headers.update(API_VERSION)
        if req.method not in ("GET", "HEAD"):
            response.headers["Connection"] = "close"  # an unread push body must not block the next request
        try:
            await send_response(send, receive, response, req.method == "HEAD")
        except ClientDisconnected:
            return
        except (FillFailed, OSError) as exc:
            log.warning("aborted %s %s after the headers: %s", req.method, req.path, exc)
        finally:
            if response.on_close is not None:
                response.on_close()

    async def _respond(self, req: Request) -> Response:
        edge_handler = EDGE_ROUTES.get(req.path)
        if edge_handler is not None:
            return await edge_handler(self.ctx, req)
        ctx = self._select(req)
        if is_push(req.method, req.path):
            if ctx is not self.ctx:
                raise e.RegistryError(e.UNSUPPORTED, "pushes go to the default upstream only")
            return await self.ctx.push.relay(req)
        if req.method not in ("GET", "HEAD"):
            raise e.RegistryError(e.UNSUPPORTED)
        handler, req.params = match(req.path)
        if ctx.authz is None:  # tests of the caching layers; further upstreams (auth_mode none)
            return await handler(ctx, req)
        header_name = ctx.settings.client_header_name.lower()
        client_header = req.header(header_name) if header_name else None
        # Every request is decided, cache hits included (edge.authz); upstream requests made for it (and the
        # fills it starts, which copy this context) carry the client's authorization.
        repo = req.params.get("name")
        upstream_auth = await ctx.authz.authorize(req.header("authorization"), client_header, repo)
        reset = CLIENT_AUTHORIZATION.set(upstream_auth)
        try:
            return await handler(ctx, req)
        finally:
            CLIENT_AUTHORIZATION.reset(reset)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
