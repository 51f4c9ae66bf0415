"""Background maintenance of a running registry: usage flushes, scheduled GC, audit checkpoints and
audit retention. ``serve_maintenance`` runs them all until cancelled (started from the server's nursery);
on cancellation the usage batch is flushed and a last checkpoint written (both shielded)."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from pathlib import Path

import trio

from config import Settings
from registry.audit import chain, query
from registry.audit.checkpoints import Checkpointer, audit_dir
from registry.gc.collector import GarbageCollector, format_report
from registry.gc.policy_source import PolicySource
from registry.gc.retention import apply_retention
from registry.storage.outbox_window import SqliteOutboxWindow
from registry.storage.sqlite_meta import SqliteMetadataStore

log = logging.getLogger("registry.gc")


class Maintenance:
    def __init__(
        self, settings: Settings, meta: SqliteMetadataStore, collector: GarbageCollector, policy: PolicySource
    ) -> None:
        self.settings = settings
        self.meta = meta
        self.collector = collector
        self.policy = policy
        self.checkpointer = Checkpointer(audit_dir(Path(settings.storage.root)))

    async def audit_configuration(self) -> None:
        """Audit a configuration change: the settings at start (compared with the last start) and every
        change of the retention policy file the running server picks up."""
        digest = hashlib.sha256(repr(self.settings).encode()).hexdigest()
        policy = await trio.to_thread.run_sync(lambda: (self.policy.current(), self.policy.version)[1])

        def w(conn: sqlite3.Connection) -> None:
            for event, value, extra in (
                ("config.load", digest, {}),
                ("config.retention_policy", policy, {"file": str(self.policy.path)}),
            ):
                row = conn.execute(
                    "SELECT detail FROM audit WHERE event = ? ORDER BY id DESC LIMIT 1", (event,)
                ).fetchone()
                if row is None or json.loads(row[0]).get("sha256") != value:
                    chain.append(conn, chain.AuditEntry(event, actor="system", detail={"sha256": value, **extra}))

        await self.meta.db.write(w, notify=False)

    async def checkpoint(self) -> bool:
        """Write a signed checkpoint if the audit chain moved; prune by ``audit.retention_days``."""
        days = self.settings.audit.retention_days
        if days > 0:
            before = time.time() - days * 86400
            await self.meta.db.write(lambda conn: query.prune(conn, before, self.checkpointer), notify=False)
        return await self.meta.db.read(self.checkpointer.checkpoint)

    async def serve_gc(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        gc = self.settings.gc
        if gc.interval_seconds <= 0:
            return
        while True:
            await trio.sleep(gc.interval_seconds)
            try:
                report = await self.collector.collect(gc.grace_seconds)
                log.info("scheduled gc: %s", format_report(report).splitlines()[-1])
            except Exception:
                log.exception("scheduled garbage collection failed")

    async def serve_retention(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        interval = self.settings.retention.interval_seconds
        if interval <= 0:
            return
        while True:
            await trio.sleep(interval)
            try:
                await self.collector.service.usage.flush(self.meta.record_usage)
                report = await apply_retention(self.meta, self.policy.current())
                log.info("scheduled retention: %d manifest(s) deleted", len(report.deleted))
            except Exception:
                log.exception("scheduled retention failed")

    async def serve_checkpoints(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                try:
                    await self.audit_configuration()
                    await self.checkpoint()
                except Exception:
                    log.exception("audit checkpoint failed")
                await trio.sleep(self.settings.audit.checkpoint_interval_seconds)
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await self.checkpoint()
                except Exception:
                    log.exception("final audit checkpoint failed")

    async def serve_outbox_prune(
        self, interval: float = 600.0, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Prune the outbox to the ``[events]`` retention window every ``interval`` seconds (docs/events.md)."""
        task_status.started()
        events, window = self.settings.events, SqliteOutboxWindow(self.meta.db)
        while True:
            try:
                pruned = await window.prune(events.retention_days, events.retention_max_rows)
                if pruned:
                    log.info("pruned %d outbox event(s) past the retention window", pruned)
            except Exception:
                log.exception("outbox pruning failed")
            await trio.sleep(interval)

    async def serve_maintenance(
        self, leader: bool = True, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Every process flushes its blob-usage times; only the ``leader`` (the one process, or worker 0 of
        ``server.workers``) runs GC, retention, audit checkpoints and outbox pruning."""
        usage = self.collector.service.usage
        async with trio.open_nursery() as nursery:
            await nursery.start(usage.serve_flush, self.meta.record_usage, self.settings.gc.usage_flush_seconds)
            if not leader:
                task_status.started()
                return
            await nursery.start(self.serve_gc)
            await nursery.start(self.serve_retention)
            await nursery.start(self.serve_checkpoints)
            await nursery.start(self.serve_outbox_prune)
            task_status.started()
