"""The pull hook: an optional gate the composition root installs to refuse manifest pulls.

Core only defines the role (:class:`PullGate`); an extension implements it (the scan policy does) and
``registry.app`` wires it into :class:`registry.api.context.ApiContext`. A refusal is an OCI ``DENIED`` error
whose message is the gate's reason. When a policy governs the repository, every manifest answer (allowed or
not) names it in the header :data:`registry.oci.wire.PULL_POLICY_HEADER`, so caches in front of the registry
(the edge) know they must revalidate the manifest with a short TTL instead of treating it as immutable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from registry.oci.wire import PULL_POLICY_HEADER
from registry.storage.records import ManifestRecord

POLICY_HEADER = PULL_POLICY_HEADER


@dataclass(frozen=True)
class PullDecision:
    policy: str | None = None  # the policy governing the repository (e.g. "scan; namespace=team"); None: none
    refusal: str | None = None  # why the pull is refused (naming the policy); None: allowed


class PullGate(Protocol):
    async def check(self, repo: str, record: ManifestRecord) -> PullDecision:
        """Whether ``record`` may be pulled from ``repo`` and which policy governs ``repo``. Must not raise for
        ordinary refusals."""
