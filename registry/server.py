"""Serve the registry with hypercorn's trio worker: HTTP/1.1 only, optional TLS with certificate reload."""

from __future__ import annotations

import logging
import os
import signal
import ssl
from functools import partial
from typing import Any, cast

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from config import Settings
from config.loader import parse_listen
from registry.app import Registry, open_registry
from registry.connguard import install as guard_connections
from registry.metrics import instrument_registry

log = logging.getLogger("registry")


class _Config(HypercornConfig):
    """Keeps the SSLContext hypercorn creates, so certificates can be reloaded in place."""

    ssl_context: ssl.SSLContext | None = None

    def create_ssl_context(self) -> ssl.SSLContext | None:
        self.ssl_context = super().create_ssl_context()
        return self.ssl_context


def hypercorn_config(settings: Settings) -> _Config:
    server = settings.server
    host, port = parse_listen(server.listen)
    config = _Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    # hypercorn's HTTP/2 on the trio worker crashed under load: offer HTTP/1.1 only.
    config.alpn_protocols = ["http/1.1"]
    config.h2_max_concurrent_streams = 1
    config.keep_alive_timeout = server.keep_alive_timeout
    config.graceful_timeout = server.graceful_timeout
    config.accesslog = logging.getLogger("registry.access") if settings.log.access_log else None
    config.access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss rid=%({x-request-id}o)s'
    config.errorlog = logging.getLogger("hypercorn.error")
    if server.tls_cert:
        config.certfile = server.tls_cert
        config.keyfile = server.tls_key
    return config


async def _reload_certificates(config: _Config, cert: str, key: str, interval: float = 5.0) -> None:
    """Reload the certificate chain into the live SSLContext when either file changes."""

    def mtimes() -> tuple[float, float]:
        return os.stat(cert).st_mtime, os.stat(key).st_mtime

    seen = mtimes()
    while True:
        await trio.sleep(interval)
        try:
            current = mtimes()
            if current != seen and config.ssl_context is not None:
                config.ssl_context.load_cert_chain(certfile=cert, keyfile=key)
                seen = current
                log.info("reloaded TLS certificate from %s", cert)
        except (OSError, ssl.SSLError) as exc:
            log.error("TLS certificate reload failed (keeping the old one): %s", exc)


async def _wait_for_signal() -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("received %s: draining connections", signal.Signals(signum).name)
            return


async def _drain(registry: Registry) -> None:
    """hypercorn's shutdown trigger: on SIGTERM/SIGINT end the event-feed streams, then let hypercorn drain."""
    await _wait_for_signal()
    registry.commits.close()


async def serve(settings: Settings, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Run the registry until SIGTERM/SIGINT (or cancellation). ``task_status`` receives the bound URLs."""
    config = hypercorn_config(settings)
    guard_connections()
    async with open_registry(settings) as registry, trio.open_nursery() as background:
        await background.start(registry.relay.serve)
        await background.start(registry.serve_upload_purge)
        await background.start(registry.maintenance.serve_maintenance)
        for loop in registry.background:
            await background.start(loop)
        if settings.server.tls_cert:
            background.start_soon(_reload_certificates, config, settings.server.tls_cert, settings.server.tls_key)
        app, metrics = instrument_registry(registry.asgi, registry.blobs.uploads)
        registry.maintenance.collector.observers.append(metrics.observe_gc)
        async with trio.open_nursery() as server:
            binds = await server.start(
                partial(hypercorn_serve, cast(Any, app), config, shutdown_trigger=partial(_drain, registry))
            )
            for bind in binds:
                if settings.auth.mode == "none":
                    log.warning(
                        "AUTHENTICATION IS DISABLED (--auth none): anyone who can reach %s can push, pull and delete",
                        bind,
                    )
                log.info("registry listening on %s (data: %s)", bind, os.path.abspath(settings.storage.root))
            task_status.started(binds)
        # hypercorn returned after a graceful shutdown: stop the background loops too.
        background.cancel_scope.cancel()
