"""Composition root of an edge node: opens the cache, the index and the upstream client, and wires the services.

The application's nursery (the lifetime of :func:`open_edge`) runs the fills, so a fill outlives the request
that started it; leaving the context cancels fills still running (their temp files are removed).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from edge.api.context import EdgeContext
from edge.api.routes import EdgeAsgi
from edge.authz import EdgeAuthorizer
from edge.blobcache import DiskBlobCache, open_blob_cache
from edge.blobs import EdgeBlobs
from edge.index import SqliteEdgeIndex, open_edge_index
from edge.manifestcache import ManifestCache
from edge.metrics import EdgeMetrics
from edge.prefetch import Prefetcher
from edge.primaryapi import open_primary_api
from edge.pullstats import PullReporter
from edge.push import PushRelay
from edge.settings import EdgeSettings, ExtraUpstream
from edge.subscription import CURSOR_FILE, CursorFile, FeedSubscriber
from edge.upstream import Upstream, open_upstream


def _caches(
    settings: EdgeSettings,
    upstream: Upstream,
    index: SqliteEdgeIndex,
    cache: DiskBlobCache,
    metrics: EdgeMetrics,
    nursery: trio.Nursery,
    clock: Callable[[], float],
) -> tuple[EdgeBlobs, ManifestCache]:
    """The blob and manifest services of one upstream (``index`` already scoped to it)."""
    blobs = EdgeBlobs(cache=cache, index=index, upstream=upstream, metrics=metrics, nursery=nursery, clock=clock)
    manifests = ManifestCache(
        index=index,
        upstream=upstream,
        metrics=metrics,
        policy=settings.freshness(),
        clock=clock,
        max_bytes=settings.manifest_max_bytes,
    )
    return blobs, manifests


async def _open_extra(
    stack: AsyncExitStack,
    settings: EdgeSettings,
    extra: ExtraUpstream,
    parts: tuple[SqliteEdgeIndex, DiskBlobCache, EdgeMetrics, trio.Nursery, Callable[[], float]],
    **upstream_args: Any,
) -> EdgeContext:
    """The context of a further upstream: its own client, index namespace and single-flight map; the blob cache
    and counters are shared; no client authorization (auth_mode none), pull reports or pushes."""
    index, cache, metrics, nursery, clock = parts
    one = extra.settings(settings)
    upstream = await stack.enter_async_context(open_upstream(one, metrics, **upstream_args))
    scoped = index.scoped(one.upstream_id)
    blobs, manifests = _caches(one, upstream, scoped, cache, metrics, nursery, clock)
    push = PushRelay(upstream, scoped, one.upstream_url)
    return EdgeContext(one, blobs, manifests, upstream, cache, metrics, one.names(), push)


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
                AsyncExitStack() as stack,
                trio.open_nursery() as nursery,
            ):
                blobs, manifests = _caches(settings, upstream, index, cache, metrics, nursery, clock)
                parts = (index, cache, metrics, nursery, clock)
                extras = [await _open_extra(stack, settings, x, parts, **upstream_args) for x in settings.upstreams]
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
                yield EdgeAsgi(ctx, extras)
                nursery.cancel_scope.cancel()
        finally:
            index.close()
    finally:
        cache.close()
