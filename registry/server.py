"""Serve the registry with hypercorn's trio worker: HTTP/1.1 only, optional TLS with certificate reload."""

from __future__ import annotations

import logging
import os
import signal
import ssl
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, cast

import trio
from hypercorn.config import Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from config import Settings
from registry.app import Registry, open_registry
from registry.connguard import install as guard_connections
from registry.h11send import install as coalesce_small_answers
from registry.listen import ListenConfig, hypercorn_config, log_listening
from registry.metrics import instrument_registry
from registry.storage.outbox_window import SqliteOutboxWindow

log = logging.getLogger("registry")


async def _reload_certificates(config: ListenConfig, cert: str, key: str, interval: float = 5.0) -> None:
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


async def _drain(registry: Registry, trigger: Callable[[], Awaitable[None]]) -> None:
    """hypercorn's shutdown trigger: once ``trigger`` returns (SIGTERM/SIGINT by default), end the event-feed
    streams, then let hypercorn drain."""
    await trigger()
    registry.commits.close()


async def serve(
    settings: Settings,
    sockets: Sockets | None = None,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the registry in this one process until SIGTERM/SIGINT (or cancellation), on ``sockets`` (from
    :func:`registry.listen.bind`) or on ``server.listen``. ``task_status`` receives the bound URLs."""
    await serve_worker(settings, sockets=sockets, task_status=task_status, shared=False)


async def serve_worker(
    settings: Settings,
    *,
    sockets: Sockets | None = None,
    leader: bool = True,
    shared: bool = True,
    shutdown: Callable[[], Awaitable[None]] = _wait_for_signal,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve on ``sockets`` (bound from ``server.listen`` when None) until ``shutdown`` returns.

    One process of ``server.workers`` (registry/workers.py; ``shared``: other processes serve the same data)
    gets the supervisor's sockets; only the ``leader`` runs the background jobs (event relay, upload purge,
    GC, retention, audit checkpoints, extension loops); every process flushes its own blob-usage times, and
    the other processes' commits wake this one's event-feed long polls (:func:`_watch_commits`). The one
    process of ``registry serve`` (not ``shared``) logs the ``registry listening`` line itself.
    """
    config = hypercorn_config(settings)
    guard_connections()
    coalesce_small_answers()
    async with open_registry(settings) as registry, trio.open_nursery() as background:
        await background.start(registry.maintenance.serve_maintenance, leader)
        if leader:
            await background.start(registry.relay.serve)
            await background.start(registry.serve_upload_purge)
            for loop in registry.background:
                await background.start(loop)
        if shared:
            background.start_soon(_watch_commits, registry)
        if settings.server.tls_cert:
            background.start_soon(_reload_certificates, config, settings.server.tls_cert, settings.server.tls_key)
        app, metrics = instrument_registry(registry.asgi, registry.blobs.uploads)
        registry.maintenance.collector.observers.append(metrics.observe_gc)
        wrapped = wrap_app(cast(Any, app), config.wsgi_max_body_size, "asgi")
        async with trio.open_nursery() as server:
            trigger = partial(_drain, registry, shutdown)
            serving = partial(worker_serve, wrapped, config, sockets=sockets, shutdown_trigger=trigger)
            binds = await server.start(serving)
            if not shared:
                for bind in binds:
                    log_listening(settings, bind)
            task_status.started(binds)
        # hypercorn returned after a graceful shutdown: stop the background loops too.
        background.cancel_scope.cancel()


async def _watch_commits(registry: Registry, interval: float = 0.25) -> None:
    """Another process's commits: wake this one's long polls (and relay) when the outbox grows."""
    window = SqliteOutboxWindow(registry.meta.db)
    seen = await window.head_inline()
    while True:
        await trio.sleep(interval)
        try:
            head = await window.head_inline()
        except Exception:
            log.exception("reading the outbox head failed")
            continue
        if head != seen:
            seen = head
            registry.relay.notify()
            registry.commits.notify()
