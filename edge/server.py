"""Serve an edge node with hypercorn's trio worker: HTTP/1.1 only (as the primary), port 0 allowed, drained on
SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import os
import signal
from functools import partial
from typing import Any, cast

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from edge.app import open_edge
from edge.connguard import install as guard_connections
from edge.promexport import forward_request_id, instrument_edge
from edge.settings import EdgeSettings, parse_listen

log = logging.getLogger("edge")


def hypercorn_config(settings: EdgeSettings) -> HypercornConfig:
    host, port = parse_listen(settings.listen)
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.alpn_protocols = ["http/1.1"]  # hypercorn's HTTP/2 on the trio worker crashed under load
    config.h2_max_concurrent_streams = 1
    config.keep_alive_timeout = settings.keep_alive_timeout
    config.graceful_timeout = settings.graceful_timeout
    config.accesslog = logging.getLogger("edge.access") if settings.access_log else None
    config.access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss rid=%({x-request-id}o)s'
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


class ListenError(Exception):
    """The listening address cannot be bound (in use, not local, no permission)."""


def bind(config: HypercornConfig, listen: str) -> Sockets:
    """Bind and listen before the edge opens its cache, so a port in use is one clear message
    (``ListenError``) rather than a traceback from inside the server."""
    try:
        sockets = config.create_sockets()
    except OSError as exc:
        raise ListenError(f"cannot listen on {listen}: {exc.strerror or exc}") from exc
    for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
        sock.listen(config.backlog)
    return sockets


async def _wait_for_signal() -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("received %s: draining connections", signal.Signals(signum).name)
            return


async def serve(
    settings: EdgeSettings, sockets: Sockets, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run the edge on ``sockets`` (from :func:`bind`) until SIGTERM/SIGINT (or cancellation). ``task_status``
    receives the bound URLs."""
    config = hypercorn_config(settings)
    guard_connections()
    hooks = {"request": [forward_request_id]}
    async with open_edge(settings, event_hooks=hooks) as edge_app, trio.open_nursery() as server:
        app, _ = instrument_edge(edge_app, edge_app.ctx)
        wrapped = wrap_app(cast(Any, app), config.wsgi_max_body_size, "asgi")
        serving = partial(worker_serve, wrapped, config, sockets=sockets, shutdown_trigger=_wait_for_signal)
        binds = await server.start(serving)
        for bind in binds:
            log.info(
                "edge listening on %s (upstream %s, cache %s, %d MiB)",
                bind,
                settings.upstream_url,
                os.path.abspath(settings.cache_dir),
                settings.cache_size_mib,
            )
        task_status.started(binds)
