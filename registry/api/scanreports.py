"""What the management API needs to serve scan results: a role an extension implements (core never imports it)."""

from __future__ import annotations

from typing import Any, Protocol


class ScanReports(Protocol):
    async def result(self, repo: str, digest: str) -> dict[str, Any] | None:
        """The stored scan report of ``repo@digest`` (schema in docs/scanning.md), or None if never scanned."""
