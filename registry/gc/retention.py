"""Applying a retention policy online: one write transaction per repository, audited per deletion.

A dry run executes exactly the same transaction and rolls it back, so it reports exactly what a real run
at that moment deletes. Deleting a manifest unlinks it (and its tags and referrer entries) from the
repository; the bytes go at the next garbage collection once unreferenced.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from registry.audit import chain
from registry.gc.rules import Artifact, Policy, plan
from registry.storage.sqlite_meta import SqliteMetadataStore


class _Rollback(Exception):
    pass


@dataclass
class RetentionReport:
    dry_run: bool
    deleted: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "deleted": self.deleted}


def _artifacts(conn: sqlite3.Connection, repo: str) -> list[Artifact]:
    rows = conn.execute(
        "SELECT r.digest, r.pushed, m.subject, "
        "(SELECT MAX(at) FROM pulls p WHERE p.repo = r.repo AND p.digest = r.digest) "
        "FROM repo_manifests r JOIN manifests m ON m.digest = r.digest WHERE r.repo = ?",
        (repo,),
    ).fetchall()
    tags: dict[str, list[str]] = {}
    for tag, digest in conn.execute("SELECT tag, digest FROM tags WHERE repo = ?", (repo,)):
        tags.setdefault(digest, []).append(tag)
    children: dict[str, list[str]] = {}
    for digest, ref in conn.execute(
        "SELECT f.digest, f.ref FROM manifest_refs f JOIN repo_manifests r ON r.digest = f.digest "
        "WHERE r.repo = ? AND f.kind = 'child'",
        (repo,),
    ):
        children.setdefault(digest, []).append(ref)
    return [
        Artifact(d, tuple(sorted(tags.get(d, []))), float(pushed or 0), pulled, subject, tuple(children.get(d, [])))
        for d, pushed, subject, pulled in rows
    ]


def _apply(conn: sqlite3.Connection, policy: Policy, now: float, report: RetentionReport, actor: str) -> None:
    repos = [r[0] for r in conn.execute("SELECT DISTINCT repo FROM repo_manifests ORDER BY repo")]
    for repo in repos:
        artifacts = _artifacts(conn, repo)
        by_digest = {a.digest: a for a in artifacts}
        for digest in plan(repo, artifacts, policy, now):
            conn.execute("DELETE FROM repo_manifests WHERE repo = ? AND digest = ?", (repo, digest))
            conn.execute("DELETE FROM tags WHERE repo = ? AND digest = ?", (repo, digest))
            conn.execute("DELETE FROM referrers WHERE repo = ? AND digest = ?", (repo, digest))
            conn.execute(
                "INSERT INTO outbox(at, kind, repo, digest, tag, data) "
                "VALUES (?, 'manifest.deleted', ?, ?, NULL, 'retention')",
                (now, repo, digest),
            )
            tags = list(by_digest[digest].tags)
            report.deleted.append({"repository": repo, "digest": digest, "tags": tags})
            chain.append(
                conn,
                chain.AuditEntry(
                    "retention.manifest.delete",
                    actor=actor,
                    resource=f"{repo}@{digest}",
                    detail={"tags": tags, "dry_run": report.dry_run},
                ),
            )
    if report.dry_run:
        raise _Rollback


async def apply_retention(
    meta: SqliteMetadataStore, policy: Policy, dry_run: bool = False, actor: str = "system:retention"
) -> RetentionReport:
    """Apply ``policy`` to every repository now. See the module docstring."""
    report = RetentionReport(dry_run)
    now = time.time()
    with suppress(_Rollback):
        await meta.db.write(lambda conn: _apply(conn, policy, now, report, actor), notify=not dry_run)
    return report
