"""Manifest freshness: whether a cached manifest (a tag → digest mapping, or a manifest by digest) may be served,
must be revalidated, or may be served stale.

Pure: no I/O, no clock. Callers pass ``now`` (seconds, the same clock as ``checked_at``).

Tags are confirmed after ``tag_ttl``. Manifests by digest have immutable bytes, but whether the upstream still
lets them be pulled can change (a scan pull policy on the primary), so they are confirmed after
``digest_ttl``. A repository whose upstream names a pull policy (``X-Registry-Pull-Policy``) is governed by
:meth:`FreshnessPolicy.under_pull_policy`: both intervals shortened to ``policy_ttl`` and at most
``policy_max_stale`` of stale serving while the upstream is unavailable. Blobs never go through here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Freshness(enum.Enum):
    FRESH = "fresh"  # serve the cached entry, do not ask the upstream
    REVALIDATE = "revalidate"  # ask the upstream (HEAD) before serving


class OnFailure(enum.Enum):
    SERVE_STALE = "serve-stale"  # upstream unreachable: serve the last known entry, marked stale
    FAIL = "fail"  # too old to serve: answer 503


@dataclass(frozen=True)
class FreshnessPolicy:
    tag_ttl: float  # seconds a confirmed tag mapping is fresh
    max_stale: float  # seconds past tag_ttl it may still be served while the upstream is unavailable
    digest_ttl: float = 300.0  # seconds a manifest by digest is served before it is confirmed again
    policy_ttl: float = 30.0  # both TTLs, at most, for repositories under an upstream pull policy
    policy_max_stale: float = 0.0  # max_stale for repositories under an upstream pull policy
    governed: bool = False  # this is the policy of a repository under an upstream pull policy

    def under_pull_policy(self) -> FreshnessPolicy:
        """The stricter policy for a repository whose upstream named a pull policy."""
        return FreshnessPolicy(
            tag_ttl=min(self.tag_ttl, self.policy_ttl),
            max_stale=self.policy_max_stale,
            digest_ttl=min(self.digest_ttl, self.policy_ttl),
            policy_ttl=self.policy_ttl,
            policy_max_stale=self.policy_max_stale,
            governed=True,
        )


def _ttl(policy: FreshnessPolicy, by_digest: bool) -> float:
    return policy.digest_ttl if by_digest else policy.tag_ttl


def decide(checked_at: float, now: float, policy: FreshnessPolicy, *, by_digest: bool = False) -> Freshness:
    """FRESH while ``now - checked_at`` is below the TTL (``digest_ttl`` when ``by_digest``, else ``tag_ttl``),
    else REVALIDATE (a clock going backwards also revalidates)."""
    age = now - checked_at
    if 0 <= age < _ttl(policy, by_digest):
        return Freshness.FRESH
    return Freshness.REVALIDATE


def on_upstream_failure(
    checked_at: float, now: float, policy: FreshnessPolicy, *, by_digest: bool = False
) -> OnFailure:
    """When revalidation failed because the upstream is unavailable (down, timeout, 429, 5xx):
    SERVE_STALE while ``now - checked_at <= TTL + max_stale``, else FAIL.

    A manifest by digest outside a pull policy is always SERVE_STALE: its bytes cannot change, and an edge cut
    off from its upstream keeps serving what it verified (only a pull policy makes the upstream's answer matter)."""
    if by_digest and not policy.governed:
        return OnFailure.SERVE_STALE
    age = now - checked_at
    if age <= _ttl(policy, by_digest) + policy.max_stale:
        return OnFailure.SERVE_STALE
    return OnFailure.FAIL
