"""Composition root of an edge node: opens the cache, the index and the upstream client, and wires the services.

The application's nursery (the lifetime of :func:`open_edge`) runs the fills, so a fill outlives the request
that started it; leaving the context cancels fills still running (their temp files are removed).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from edge.api.context import EdgeContext
from edge.api.routes import EdgeAsgi
from edge.authz import EdgeAuthorizer
from edge.blobcache import open_blob_cache
from edge.blobs import EdgeBlobs
from edge.index import open_edge_index
from edge.manifestcache import ManifestCache
from edge.metrics import EdgeMetrics
from edge.prefetch import Prefetcher
from edge.primaryapi import open_primary_api
from edge.pullstats import PullReporter
from edge.push import PushRelay
from edge.settings import EdgeSettings
from edge.subscription import CURSOR_FILE, CursorFile, FeedSubscriber
from edge.upstream import open_upstream


@asynccontextmanager
async def open_edge(
    settings: EdgeSettings, clock: Callable[[], float] = time.time, **upstream_args: Any
) -> AsyncIterator[EdgeAsgi]:
    """The edge's ASGI application, ready to serve until the context exits.

    ``clock`` is the wall clock used for tag freshness (persisted, so not trio's clock); ``upstream_args`` go
    to ``httpx.AsyncClient`` (tests pass a ``transport``).
    """
    metrics = EdgeMetrics()
    root = Path(settings.cache_dir)
    cache = await open_blob_cache(root, settings.cache_size_bytes)
    try:
        index = await open_edge_index(root / "edge.db")
        try:
            async with (
                open_upstream(settings, metrics, **upstream_args) as upstream,
                open_primary_api(settings, **upstream_args) as primary,
                trio.open_nursery() as nursery,
            ):
                blobs = EdgeBlobs(
                    cache=cache, index=index, upstream=upstream, metrics=metrics, nursery=nursery, clock=clock
                )
                manifests = ManifestCache(
                    index=index,
                    upstream=upstream,
                    metrics=metrics,
                    policy=settings.freshness(),
                    clock=clock,
                    max_bytes=settings.manifest_max_bytes,
                )
                authz = EdgeAuthorizer(settings, upstream)
                push = PushRelay(upstream, index, settings.upstream_url)
                pulls = None
                if settings.reports_pulls:
                    pulls = PullReporter(
                        primary.report_pulls, settings.pull_report_interval, settings.pull_report_max_entries
                    )
                    nursery.start_soon(pulls.serve_reports)
                if settings.subscribe_namespaces:
                    subscriber = FeedSubscriber(
                        primary,
                        Prefetcher(manifests, blobs),
                        settings.subscribe_namespaces,
                        CursorFile(root / CURSOR_FILE, settings.upstream_url),
                        metrics,
                    )
                    nursery.start_soon(subscriber.serve)
                ctx = EdgeContext(
                    settings, blobs, manifests, upstream, cache, metrics, settings.names(), push, authz, pulls
                )
                yield EdgeAsgi(ctx)
                nursery.cancel_scope.cancel()
        finally:
            index.close()
    finally:
        cache.close()
