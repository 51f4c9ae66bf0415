"""The pull hook: an optional gate the composition root installs to refuse manifest pulls.

Core only defines the role (:class:`PullGate`); an extension implements it (the scan policy does) and
``registry.app`` wires it into :class:`registry.api.context.ApiContext`. A refusal is an OCI ``DENIED`` error
whose message is the gate's reason.
"""

from __future__ import annotations

from typing import Protocol

from registry.storage.records import ManifestRecord


class PullGate(Protocol):
    async def check(self, repo: str, record: ManifestRecord) -> str | None:
        """None to allow the pull of ``record`` from ``repo``; otherwise the reason it is refused (naming the
        policy). Must not raise for ordinary refusals."""
