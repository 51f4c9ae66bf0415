"""Online garbage collection from the metadata store: no read-only mode, no walk over the blob directory.

One run:
1. flush batched blob touches (HEAD/GET) so the grace clock is current; purge stale upload sessions;
2. in one write transaction (rolled back for a dry run, so a dry run reports exactly what a real run
   at that moment removes):
   a. unlink referrers whose subject is missing from their repository, pushed before the grace cutoff;
   b. delete manifest rows no repository links any more (and their reference rows);
   c. for every blob that no remaining manifest references and that was last referenced (uploaded,
      mounted, HEAD or GET) before the cutoff: delete its rows and insert a tombstone;
3. delete the files of tombstoned blobs (including tombstones left by a crashed run), then the tombstones.

Race with a concurrent push of the same digest: an upload commits its metadata only inside a write
transaction that refuses while a tombstone exists and checks the file is still present, so it either
links an intact file or fails cleanly (503 ``UNAVAILABLE``, the client pushes again). A manifest PUT
checks its blobs are linked inside its transaction, so it either lands before step 2 (then its blobs are
referenced and kept) or after (then it fails with ``MANIFEST_BLOB_UNKNOWN``). Every deletion is audited in
the transaction that performs it.

Observers (``GarbageCollector.observers``, e.g. the server's Prometheus metrics) are called synchronously after
every run with a :class:`GcRun`: the report (None when the run failed), its duration and whether it was a dry run.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

from registry.audit import chain
from registry.oci.digest import Digest
from registry.progress import NO_PROGRESS, ProgressSink
from registry.storage.interfaces import BlobStore
from registry.storage.service import RegistryService
from registry.storage.sqlite_meta import SqliteMetadataStore

DEFAULT_GRACE_SECONDS = 2 * 3600
ABANDONED_SECONDS = 3600


class _DryRun(Exception):
    def __init__(self, report: GcReport) -> None:
        self.report = report


@dataclass
class GcReport:
    dry_run: bool
    grace_seconds: float
    referrers: list[dict[str, str]] = field(default_factory=list)
    manifests: list[dict[str, Any]] = field(default_factory=list)
    blobs: list[dict[str, Any]] = field(default_factory=list)
    uploads: int = 0
    files_deleted: int = 0

    @property
    def bytes_freed(self) -> int:
        return sum(int(b["size"]) for b in self.blobs) + sum(int(m["size"]) for m in self.manifests)

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "grace_seconds": self.grace_seconds,
            "referrers": self.referrers,
            "manifests": self.manifests,
            "blobs": self.blobs,
            "stale_uploads": self.uploads,
            "bytes_freed": self.bytes_freed,
        }


@dataclass(frozen=True)
class GcRun:
    """One finished collection, as observers see it: ``report`` is None when the run raised."""

    report: GcReport | None
    seconds: float
    dry_run: bool
    finished_at: float


def format_report(report: GcReport) -> str:
    verb = "would remove" if report.dry_run else "removed"
    lines = [f"{verb} referrer {r['repo']}@{r['digest']} (subject {r['subject']} missing)" for r in report.referrers]
    lines += [f"{verb} manifest {m['digest']} ({m['size']} bytes)" for m in report.manifests]
    lines += [f"{verb} blob {b['digest']} ({b['size']} bytes)" for b in report.blobs]
    lines.append(
        f"{'dry run: ' if report.dry_run else ''}{len(report.referrers)} referrer(s), {len(report.manifests)} "
        f"manifest(s), {len(report.blobs)} blob(s), {report.uploads} stale upload(s); "
        f"{report.bytes_freed} bytes {'would be ' if report.dry_run else ''}freed"
    )
    return "\n".join(lines)


def _sweep(conn: sqlite3.Connection, report: GcReport, now: float, actor: str) -> None:
    cutoff = now - report.grace_seconds
    for repo, subject, digest in conn.execute(
        "SELECT f.repo, f.subject, f.digest FROM referrers f JOIN repo_manifests r "
        "ON r.repo = f.repo AND r.digest = f.digest WHERE r.pushed < ? AND NOT EXISTS "
        "(SELECT 1 FROM repo_manifests s WHERE s.repo = f.repo AND s.digest = f.subject)",
        (cutoff,),
    ).fetchall():
        conn.execute("DELETE FROM repo_manifests WHERE repo = ? AND digest = ?", (repo, digest))
        conn.execute("DELETE FROM tags WHERE repo = ? AND digest = ?", (repo, digest))
        conn.execute("DELETE FROM referrers WHERE repo = ? AND digest = ?", (repo, digest))
        conn.execute(
            "INSERT INTO outbox(at, kind, repo, digest, tag, data) VALUES (?, 'manifest.deleted', ?, ?, NULL, 'gc')",
            (now, repo, digest),
        )
        report.referrers.append({"repo": repo, "digest": digest, "subject": subject})
        chain.append(
            conn,
            chain.AuditEntry(
                "gc.referrer.delete", actor=actor, resource=f"{repo}@{digest}", detail={"subject": subject}
            ),
        )
    for digest, size in conn.execute(
        "SELECT digest, size FROM manifests m "
        "WHERE NOT EXISTS (SELECT 1 FROM repo_manifests r WHERE r.digest = m.digest)"
    ).fetchall():
        conn.execute("DELETE FROM manifests WHERE digest = ?", (digest,))
        conn.execute("DELETE FROM manifest_refs WHERE digest = ?", (digest,))
        report.manifests.append({"digest": digest, "size": int(size)})
        chain.append(conn, chain.AuditEntry("gc.manifest.delete", actor=actor, resource=digest, detail={"size": size}))
    for digest, size in conn.execute(
        "SELECT digest, size FROM blobs b WHERE COALESCE(last_ref, created) < ? AND NOT EXISTS "
        "(SELECT 1 FROM manifest_refs f WHERE f.ref = b.digest)",
        (cutoff,),
    ).fetchall():
        repos = [r[0] for r in conn.execute("SELECT repo FROM repo_blobs WHERE digest = ?", (digest,))]
        conn.execute("DELETE FROM repo_blobs WHERE digest = ?", (digest,))
        conn.execute("DELETE FROM blobs WHERE digest = ?", (digest,))
        conn.execute("INSERT OR REPLACE INTO gc_tombstones(digest, at) VALUES (?, ?)", (digest, now))
        report.blobs.append({"digest": digest, "size": int(size), "repositories": repos})
        chain.append(
            conn,
            chain.AuditEntry("gc.blob.delete", actor=actor, resource=digest, detail={"size": size, "repos": repos}),
        )
    if report.blobs or report.manifests or report.referrers:
        chain.append(
            conn,
            chain.AuditEntry(
                "gc.run",
                actor=actor,
                detail={
                    "blobs": len(report.blobs),
                    "manifests": len(report.manifests),
                    "referrers": len(report.referrers),
                    "bytes_freed": report.bytes_freed,
                    "dry_run": report.dry_run,
                },
            ),
        )
    if report.dry_run:
        raise _DryRun(report)


class GarbageCollector:
    """Runs collections against one registry's service and metadata store."""

    def __init__(
        self,
        service: RegistryService,
        meta: SqliteMetadataStore,
        upload_ttl: float,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
    ) -> None:
        self.service = service
        self.meta = meta
        self.upload_ttl = upload_ttl
        self.grace_seconds = grace_seconds
        self.observers: list[Callable[[GcRun], None]] = []

    async def collect(
        self,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        dry_run: bool = False,
        actor: str = "system:gc",
        progress: ProgressSink = NO_PROGRESS,
    ) -> GcReport:
        """One collection (see module docstring). Safe beside serving and beside another collector.

        Every observer sees the run when it ends, also when it raised (then with ``report=None``; the exception
        propagates). A cancelled run is not reported. ``progress`` sees the phases (sweep, files).
        """
        start = time.perf_counter()
        try:
            report = await self._collect(grace_seconds, dry_run, actor, progress)
        except Exception:  # trio.Cancelled is a BaseException: a cancelled run is not reported
            self._notify(GcRun(None, time.perf_counter() - start, dry_run, time.time()))
            raise
        self._notify(GcRun(report, time.perf_counter() - start, dry_run, time.time()))
        return report

    def _notify(self, run: GcRun) -> None:
        for observer in self.observers:
            observer(run)

    async def _collect(self, grace_seconds: float, dry_run: bool, actor: str, progress: ProgressSink) -> GcReport:
        progress.phase("flush usage")
        await self.service.usage.flush(self.meta.record_usage)
        report = GcReport(dry_run, grace_seconds)
        now = time.time()
        if dry_run:
            report.uploads = len(await self.meta.stale_uploads(now - self.upload_ttl))
            progress.phase("sweep (dry run)")
            try:
                await self.meta.db.write(lambda conn: _sweep(conn, report, now, actor), notify=False)
            except _DryRun as done:
                return done.report
            return report
        progress.phase("purge stale uploads")
        report.uploads = await self.service.purge_stale_uploads(now - self.upload_ttl)
        progress.phase("sweep")
        await self.meta.db.write(lambda conn: _sweep(conn, report, now, actor))
        # This run's tombstones, and those a crashed run left (older than an hour); never another live run's.
        pending = await self.meta.db.read(
            lambda conn: [
                r[0]
                for r in conn.execute(
                    "SELECT digest FROM gc_tombstones WHERE at = ? OR at < ?", (now, now - ABANDONED_SECONDS)
                )
            ]
        )
        progress.phase("delete files", len(pending))
        for digest in pending:
            await self.service.blobs.delete(Digest.parse(digest))
            report.files_deleted += 1
            progress.advance()
        if pending:
            await self.meta.db.write(
                lambda conn: conn.executemany("DELETE FROM gc_tombstones WHERE digest = ?", [(d,) for d in pending]),
                notify=False,
            )
        return report

    async def collect_orphan_files(
        self, grace_seconds: float = DEFAULT_GRACE_SECONDS, progress: ProgressSink = NO_PROGRESS
    ) -> list[str]:
        """Opt-in (``registry gc --orphan-files``): walk the blob directory once and delete content files
        that have no metadata row and were last written before the grace cutoff (left by a crash between
        the rename and the metadata commit, or by the one push/GC interleaving described in docs/gc.md).

        Each file is tombstoned inside a write transaction that first re-checks there is still no row, so
        an upload committing the same digest meanwhile either came first (the file is kept) or is refused
        cleanly. Returns the deleted digests."""
        cutoff = time.time() - grace_seconds
        deleted = []
        progress.phase("orphan files: walk")
        async for digest in self.service.blobs.walk():
            progress.advance()
            mtime = await trio.to_thread.run_sync(_mtime, self.service.blobs, digest)
            if mtime is None or mtime >= cutoff:
                continue
            now = time.time()

            def tombstone(conn: sqlite3.Connection, d: str = str(digest), at: float = now) -> bool:
                if conn.execute("SELECT 1 FROM blobs WHERE digest = ?", (d,)).fetchone() is not None:
                    return False
                conn.execute("INSERT OR REPLACE INTO gc_tombstones(digest, at) VALUES (?, ?)", (d, at))
                chain.append(conn, chain.AuditEntry("gc.orphan_file.delete", actor="cli:gc", resource=d))
                return True

            if not await self.meta.db.write(tombstone, notify=False):
                continue
            await self.service.blobs.delete(digest)
            await self.meta.db.write(partial(_untomb, digest=str(digest)), notify=False)
            deleted.append(str(digest))
        return deleted


def _untomb(conn: sqlite3.Connection, digest: str) -> None:
    conn.execute("DELETE FROM gc_tombstones WHERE digest = ?", (digest,))


def _mtime(blobs: BlobStore, digest: Digest) -> float | None:
    path = getattr(blobs, "blob_path", None)
    if path is None:
        return None
    try:
        return float(os.stat(path(digest)).st_mtime)
    except FileNotFoundError:
        return None
