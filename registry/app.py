"""Composition root: the only place that picks implementations and wires them together."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import trio

from config import Settings
from registry.api.auth import Authorizer
from registry.api.context import ApiContext
from registry.api.eventfeed import make_event_feed
from registry.api.ops import close_safe, make_ops_app
from registry.api.routes import ASGIApp, RegistryAsgi
from registry.audit import chain
from registry.audit.chain import AuditEntry
from registry.events import CommitSignal, OutboxRelay, Subscriber
from registry.extensions import supplychain_api
from registry.extensions.scan.extension import ScanExtension
from registry.extensions.supplychain import build_supply_chain
from registry.gc.collector import GarbageCollector
from registry.gc.maintenance import Maintenance
from registry.gc.policy_source import PolicySource, policy_path
from registry.iam.setup import build_iam
from registry.storage.fs_blobs import FilesystemBlobStore
from registry.storage.outbox_window import SqliteOutboxWindow
from registry.storage.service import RegistryService
from registry.storage.sqlite_db import open_database
from registry.storage.sqlite_meta import SqliteMetadataStore

log = logging.getLogger("registry")
DB_NAME = "registry.db"


@dataclass
class Registry:
    settings: Settings
    blobs: FilesystemBlobStore
    meta: SqliteMetadataStore
    service: RegistryService
    relay: OutboxRelay
    asgi: RegistryAsgi
    maintenance: Maintenance
    # Woken on every commit; ``close()`` when draining, so event-feed streams end (registry.server does).
    commits: CommitSignal
    # Extension loops (``serve(task_status=…)``) to run beside the relay.
    background: list[Callable[..., Any]] = field(default_factory=list)

    async def ready(self) -> bool:
        try:
            await self.meta.list_repositories(1, None)
            await trio.to_thread.run_sync(self.blobs.uploads.stat)
        except Exception:
            return False
        return True

    async def serve_upload_purge(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Purge stale upload sessions every ``uploads.purge_interval_seconds`` until cancelled."""
        task_status.started()
        uploads = self.settings.uploads
        while True:
            try:
                purged = await self.service.purge_stale_uploads(time.time() - uploads.ttl_seconds)
                if purged:
                    log.info("purged %d stale upload session(s)", purged)
            except Exception:
                log.exception("upload purge failed")
            await trio.sleep(uploads.purge_interval_seconds)


@asynccontextmanager
async def open_registry(settings: Settings, subscribers: Sequence[Subscriber] = ()) -> AsyncIterator[Registry]:
    """Open the stores under ``storage.root`` and build the ASGI app. Background loops are not started:
    run ``relay.serve``, ``serve_upload_purge`` and ``maintenance.serve_maintenance`` in a nursery
    (``registry.server`` does)."""
    root = Path(settings.storage.root)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    blobs = FilesystemBlobStore(root)
    db = await open_database(root / DB_NAME)
    try:
        meta = SqliteMetadataStore(db)
        service = RegistryService(blobs, meta, settings.limits.manifest_max_bytes)
        scan = ScanExtension(service, db)
        relay = OutboxRelay(meta, [*subscribers, *scan.subscribers()])
        supply_chain = build_supply_chain(service, blobs.blob_path, root, settings.supply_chain)
        relay.subscribers.extend(supply_chain.subscribers())
        commits = CommitSignal()

        def committed() -> None:
            relay.notify()
            commits.notify()

        meta.on_commit = committed
        authorizer = None
        if settings.auth.mode == "token":
            stack = build_iam(settings, db)
            written = await stack.iam.bootstrap(root, settings.auth.admin_credential_file)
            if written is not None:
                log.warning("first start: admin credential written to %s (readable only by its owner)", written)
            await stack.tokens.refresh()
            authorizer = Authorizer(stack.iam, stack.store, stack.tokens, stack.service_name, settings.auth.realm)
        registry: Registry | None = None

        async def ready() -> bool:
            return registry is not None and await registry.ready()

        collector = GarbageCollector(service, meta, settings.uploads.ttl_seconds, settings.gc.grace_seconds)
        policy = PolicySource(policy_path(root, settings.retention.policy_file))
        service.immutable_tag = policy.is_immutable
        maintenance = Maintenance(settings, meta, collector, policy)

        async def audit(entry: AuditEntry) -> None:
            await db.write(lambda conn: chain.append(conn, entry), notify=False)

        ctx = ApiContext(service, settings, authorizer, audit, pull_gate=scan.pull_gate())
        window = SqliteOutboxWindow(db)
        feed = make_event_feed(window, commits, authorizer, settings.events)
        ops = make_ops_app(ready, authorizer, maintenance, scan.scanner, [feed])
        if authorizer is not None:
            supplychain_api.install(ops, authorizer, supply_chain.sbom.generator, supply_chain.keys)
        asgi = RegistryAsgi(ctx, close_safe(cast(ASGIApp, ops)))
        registry = Registry(
            settings, blobs, meta, service, relay, asgi, maintenance, commits, list(supply_chain.background())
        )
        yield registry
    finally:
        await db.aclose()
