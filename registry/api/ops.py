"""Routes outside /v2, served by Quart: liveness and readiness."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import trio
from quart import Blueprint, Response
from quart_trio import QuartTrio

from registry.api import management
from registry.api.auth import Authorizer
from registry.api.http import Message, Receive, Scope, Send
from registry.api.scanreports import ScanReports
from registry.gc.maintenance import Maintenance


def make_ops_app(
    ready: Callable[[], Awaitable[bool]],
    auth: Authorizer | None = None,
    maintenance: Maintenance | None = None,
    scans: ScanReports | None = None,
    blueprints: Sequence[Blueprint] = (),
) -> QuartTrio:
    """The Quart app for everything that is not blob or manifest data: health, and the management API
    when IAM is on.

    Args:
        ready: returns True when storage and metadata are reachable.
        blueprints: further route groups (the event feed), registered before the management API.
    """
    app = QuartTrio("registry")
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    if auth is not None:
        management.install(app, auth, maintenance, scans)

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


def close_safe(
    app: Callable[[Scope, Receive, Send], Awaitable[None]],
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """Wrap a Quart app so HTTP/1.0, ``Connection: close`` and idle keep-alive connections are closed.

    Measured with quart-trio 0.12 under hypercorn 0.18's trio worker: Quart keeps calling ``receive()``
    after the request body is complete, consumes the ``http.disconnect`` that hypercorn emits once the
    response ends, and the connection then stays open. After the body is complete this wrapper parks
    further ``receive()`` calls instead (Quart cancels them when its response is sent).
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        complete = False

        async def guarded_receive() -> Message:
            nonlocal complete
            if complete:
                await trio.sleep_forever()
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        await app(scope, guarded_receive, send)

    return wrapped
