"""Edge counters, kept in memory and exported as JSON at ``GET /edge/stats`` (no Prometheus dependency yet).

Counters only ever grow; they are plain integers updated from the event loop (no locking needed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class EdgeMetrics:
    hits: int = 0  # blob requests answered from the cache
    misses: int = 0  # blob requests that started a fill from the upstream
    coalesced: int = 0  # blob requests that joined a fill already in flight
    fills: int = 0  # fills committed to the cache
    fill_failures: int = 0  # fills that ended without a committed blob (upstream error, size/digest mismatch)
    digest_mismatches: int = 0
    upstream_requests: int = 0
    upstream_bytes: int = 0  # body bytes received from the upstream (blobs and manifests)
    bytes_served: int = 0  # body bytes sent to clients
    manifest_hits: int = 0
    manifest_misses: int = 0
    revalidations: int = 0
    stale_serves: int = 0
    evictions: int = 0
    unknown_ns: int = 0
    prefetches: int = 0  # prefetch requests accepted (POST /edge/prefetch)
    feed_events: int = 0  # subscription: events read from the primary's feed
    feed_prefetches: int = 0  # subscription: images prefetched because of a pushed event
    feed_failures: int = 0  # subscription: failed feed polls and failed prefetches

    def served(self, count: int) -> None:
        self.bytes_served += count

    def snapshot(self) -> dict[str, int]:
        return asdict(self)
