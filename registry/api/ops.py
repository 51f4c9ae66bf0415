"""Routes outside /v2, served by Quart: liveness and readiness."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from quart import Response
from quart_trio import QuartTrio


def make_ops_app(ready: Callable[[], Awaitable[bool]]) -> QuartTrio:
    """The Quart app for everything that is not blob or manifest data.

    Args:
        ready: returns True when storage and metadata are reachable.
    """
    app = QuartTrio("registry")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response('{"status":"ok"}', 200, content_type="application/json")

    @app.get("/readyz")
    async def readyz() -> Response:
        ok = await ready()
        body = '{"status":"ready"}' if ok else '{"status":"not ready"}'
        return Response(body, 200 if ok else 503, content_type="application/json")

    @app.errorhandler(404)
    async def not_found(_: Exception) -> Response:
        body = '{"errors":[{"code":"NOT_FOUND","message":"not found"}]}'
        return Response(body, 404, content_type="application/json")

    @app.errorhandler(405)
    async def not_allowed(_: Exception) -> Response:
        body = '{"errors":[{"code":"UNSUPPORTED","message":"method not allowed"}]}'
        return Response(body, 405, content_type="application/json")

    return app
