"""Tag freshness: whether a cached tag → digest mapping may be served, must be revalidated, or may be served stale.

Pure: no I/O, no clock. Callers pass ``now`` (seconds, the same clock as ``checked_at``). Manifests and blobs
by digest are immutable and never go through here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Freshness(enum.Enum):
    FRESH = "fresh"  # serve the cached mapping, do not ask the upstream
    REVALIDATE = "revalidate"  # ask the upstream (HEAD) before serving


class OnFailure(enum.Enum):
    SERVE_STALE = "serve-stale"  # upstream unreachable: serve the last known mapping, marked stale
    FAIL = "fail"  # too old to serve: answer 503


@dataclass(frozen=True)
class FreshnessPolicy:
    tag_ttl: float  # seconds a confirmed mapping is fresh
    max_stale: float  # seconds past tag_ttl it may still be served while the upstream is unavailable


def decide(checked_at: float, now: float, policy: FreshnessPolicy) -> Freshness:
    """FRESH while ``now - checked_at < tag_ttl``, else REVALIDATE (a clock going backwards also revalidates)."""
    age = now - checked_at
    if 0 <= age < policy.tag_ttl:
        return Freshness.FRESH
    return Freshness.REVALIDATE


def on_upstream_failure(checked_at: float, now: float, policy: FreshnessPolicy) -> OnFailure:
    """When revalidation failed because the upstream is unavailable (down, timeout, 429, 5xx):
    SERVE_STALE while ``now - checked_at <= tag_ttl + max_stale``, else FAIL."""
    age = now - checked_at
    if age <= policy.tag_ttl + policy.max_stale:
        return OnFailure.SERVE_STALE
    return OnFailure.FAIL
