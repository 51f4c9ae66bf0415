"""What every edge route handler gets: the services, the settings and the counters."""

from __future__ import annotations

from dataclasses import dataclass

from edge.authz import EdgeAuthorizer
from edge.blobcache import DiskBlobCache
from edge.blobs import EdgeBlobs
from edge.manifestcache import ManifestCache
from edge.metrics import EdgeMetrics
from edge.pullstats import PullReporter
from edge.push import PushRelay
from edge.settings import EdgeSettings
from edge.upstream import Upstream


@dataclass(frozen=True)
class EdgeContext:
    settings: EdgeSettings
    blobs: EdgeBlobs
    manifests: ManifestCache
    upstream: Upstream
    cache: DiskBlobCache
    metrics: EdgeMetrics
    names: frozenset[str]  # ``ns`` values that mean the upstream
    push: PushRelay
    authz: EdgeAuthorizer | None = None  # None: every client is served (tests of the caching layers)
    pulls: PullReporter | None = None  # None: pull statistics are not reported
