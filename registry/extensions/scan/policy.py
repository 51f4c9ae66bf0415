"""Per-namespace scan policy: refuse pulls of images with vulnerabilities at or above a severity.

Off by default (no row, no check). Table ``scan_policies(namespace, min_severity, allowlist)`` in the registry
database; ``allowlist`` is a JSON list of vulnerability ids or aliases that never block. The decision uses the
stored scan result of the pulled manifest (``scan_results``): a manifest that was never scanned (or has no
SBOM) is allowed. Implements :class:`registry.api.pullgate.PullGate`.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from registry.api.pullgate import PullDecision
from registry.extensions.scan.images import ImageScanner
from registry.extensions.vulndb.osv import SEVERITIES
from registry.oci.names import namespace_of
from registry.storage.records import ManifestRecord
from registry.storage.sqlite_db import SqliteDatabase

_DDL = "CREATE TABLE IF NOT EXISTS scan_policies (namespace TEXT PRIMARY KEY, min_severity TEXT, allowlist TEXT)"
BLOCKING_SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")


@dataclass(frozen=True)
class ScanPolicy:
    namespace: str
    min_severity: str
    allowlist: tuple[str, ...]

    def blocking(self, report: dict[str, Any]) -> list[str]:
        """Ids of the report's vulnerabilities that this policy refuses."""
        limit = SEVERITIES.index(self.min_severity)
        allowed = set(self.allowlist)
        return [
            v["id"]
            for v in report.get("vulnerabilities", ())
            if v.get("severity") in SEVERITIES
            and SEVERITIES.index(v["severity"]) <= limit
            and v["id"] not in allowed
            and not allowed.intersection(v.get("aliases", ()))
        ]


class ScanPolicies:
    """Reads and writes ``scan_policies``."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def setup(self) -> None:
        await self.db.write(lambda c: c.execute(_DDL), notify=False)

    async def set(self, namespace: str, min_severity: str, allowlist: list[str]) -> ScanPolicy:
        severity = min_severity.upper()
        if severity not in BLOCKING_SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(BLOCKING_SEVERITIES)}")
        policy = ScanPolicy(namespace, severity, tuple(sorted(set(allowlist))))
        await self.setup()
        await self.db.write(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO scan_policies VALUES (?, ?, ?)",
                (namespace, severity, json.dumps(list(policy.allowlist))),
            ),
            notify=False,
        )
        return policy

    async def clear(self, namespace: str) -> bool:
        await self.setup()
        deleted: int = await self.db.write(
            lambda c: c.execute("DELETE FROM scan_policies WHERE namespace = ?", (namespace,)).rowcount, notify=False
        )
        return deleted > 0

    async def all(self) -> list[ScanPolicy]:
        await self.setup()
        rows = await self.db.read(lambda c: c.execute("SELECT * FROM scan_policies ORDER BY namespace").fetchall())
        return [ScanPolicy(str(n), str(s), tuple(json.loads(a))) for n, s, a in rows]

    async def get(self, namespace: str) -> ScanPolicy | None:
        def query(conn: sqlite3.Connection) -> Any:
            try:
                return conn.execute("SELECT * FROM scan_policies WHERE namespace = ?", (namespace,)).fetchone()
            except sqlite3.OperationalError as exc:  # table not created yet: no policies
                if "no such table" in str(exc):
                    return None
                raise  # busy: read_inline retries in a worker thread

        row = await self.db.read_inline(query)
        return None if row is None else ScanPolicy(str(row[0]), str(row[1]), tuple(json.loads(row[2])))


class ScanPolicyGate:
    """The pull gate: DENIED when the namespace has a policy and the image's stored scan breaks it."""

    def __init__(self, scanner: ImageScanner) -> None:
        self.scanner = scanner
        self.policies = ScanPolicies(scanner.db)

    async def check(self, repo: str, record: ManifestRecord) -> PullDecision:
        namespace = namespace_of(repo)
        policy = await self.policies.get(namespace)
        if policy is None:
            return PullDecision()
        governing = f"scan; namespace={namespace}"
        report = await self.scanner.result(repo, str(record.digest))
        blocking = policy.blocking(report) if report is not None else []
        if not blocking:
            return PullDecision(governing)
        shown = ", ".join(blocking[:5]) + (" …" if len(blocking) > 5 else "")
        return PullDecision(
            governing,
            f"pull refused by the scan policy of namespace {namespace!r}: {len(blocking)} vulnerabilit"
            f"{'y' if len(blocking) == 1 else 'ies'} at or above {policy.min_severity} not on its allowlist ({shown})",
        )
