"""``registry gc``, ``registry retention`` and ``registry audit verify|checkpoint|export``: maintenance
commands run beside (or without) a running server on the same data directory (SQLite WAL; they queue for
the write lock)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import trio

from config import Settings, load_settings
from registry.progress import TerminalProgress, add_progress_flag


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, dict[str, Any]] = {}
    if args.data:
        overrides["storage"] = {"root": args.data}
    return load_settings(args.config, overrides=overrides)


def _db_path(settings: Settings) -> Path | None:
    from registry.app import DB_NAME

    path = Path(settings.storage.root) / DB_NAME
    if not path.exists():
        print(f"no registry data in {settings.storage.root}", file=sys.stderr)
        return None
    return path


def cmd_gc(args: argparse.Namespace) -> int:
    from registry.audit.checkpoints import Checkpointer, audit_dir
    from registry.gc.collector import GarbageCollector, format_report
    from registry.storage.fs_blobs import FilesystemBlobStore
    from registry.storage.service import RegistryService
    from registry.storage.sqlite_meta import open_sqlite_metadata

    settings = _settings(args)
    path = _db_path(settings)
    if path is None:
        return 2
    grace = settings.gc.grace_seconds if args.grace_period is None else args.grace_period

    async def run() -> int:
        meta = await open_sqlite_metadata(path)
        try:
            blobs = FilesystemBlobStore(Path(settings.storage.root))
            service = RegistryService(blobs, meta, settings.limits.manifest_max_bytes)
            collector = GarbageCollector(service, meta, settings.uploads.ttl_seconds, grace)
            progress = TerminalProgress("gc", args.progress)
            report = await collector.collect(grace, args.dry_run, "cli:gc", progress)
            orphans = []
            if args.orphan_files and not args.dry_run:
                orphans = await collector.collect_orphan_files(grace, progress)
            progress.done()
            for digest in orphans:
                print(f"removed orphan content file {digest}", file=sys.stderr)
            checkpointer = Checkpointer(audit_dir(Path(settings.storage.root)))
            await meta.db.read(checkpointer.checkpoint)
        finally:
            await meta.aclose()
        print(json.dumps(report.as_json(), indent=2) if args.json else format_report(report))
        return 0

    return trio.run(run)


def cmd_retention(args: argparse.Namespace) -> int:
    from registry.audit.checkpoints import Checkpointer, audit_dir
    from registry.gc.policy_source import policy_path
    from registry.gc.retention import apply_retention
    from registry.gc.rules import PolicyError, load_policy
    from registry.storage.sqlite_meta import open_sqlite_metadata

    settings = _settings(args)
    path = _db_path(settings)
    if path is None:
        return 2
    root = Path(settings.storage.root)
    source = policy_path(root, settings.retention.policy_file)
    try:
        policy = load_policy(source)
    except PolicyError as exc:
        print(f"{source}: {exc}", file=sys.stderr)
        return 2
    if not policy.rules:
        print(f"no retention rules in {source}", file=sys.stderr)

    async def run() -> int:
        meta = await open_sqlite_metadata(path)
        try:
            report = await apply_retention(meta, policy, args.dry_run, "cli:retention")
            await meta.db.read(Checkpointer(audit_dir(root)).checkpoint)
        finally:
            await meta.aclose()
        if args.json:
            print(json.dumps(report.as_json(), indent=2))
        else:
            verb = "would delete" if args.dry_run else "deleted"
            for d in report.deleted:
                print(f"{verb} {d['repository']}@{d['digest']} tags={','.join(d['tags']) or '-'}")
            print(f"{'dry run: ' if args.dry_run else ''}{len(report.deleted)} manifest(s)")
        return 0

    return trio.run(run)


def _timestamp(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return datetime.fromisoformat(value).timestamp()


def cmd_audit(args: argparse.Namespace) -> int:
    from registry.audit import query
    from registry.audit.checkpoints import Checkpointer, audit_dir
    from registry.audit.verify import format_report, verify
    from registry.storage.schema import connect

    settings = _settings(args)
    path = _db_path(settings)
    if path is None:
        return 2
    directory = audit_dir(Path(settings.storage.root))
    conn = connect(path)
    try:
        if args.audit_command == "verify":
            report = verify(conn, directory)
            print(format_report(report))
            return 0 if report.ok else 1
        if args.audit_command == "checkpoint":
            written = Checkpointer(directory).checkpoint(conn)
            print("checkpoint written" if written else "checkpoint already current")
            return 0
        flt = query.AuditFilter(
            since=None if args.since is None else _timestamp(args.since),
            until=None if args.until is None else _timestamp(args.until),
            event=args.event,
            actor=args.actor,
            outcome=args.outcome,
            resource=args.resource,
        )
        progress = TerminalProgress("audit export", args.progress)
        if progress.enabled:
            progress.phase("records", query.count(conn, flt))
        out = open(args.output, "w") if args.output else sys.stdout  # noqa: SIM115 - closed below
        try:
            while True:
                page = query.records(conn, flt)
                for record in page:
                    out.write(json.dumps(record, sort_keys=True) + "\n")
                progress.advance(len(page))
                if len(page) < flt.limit:
                    break
                flt = query.AuditFilter(**{**flt.__dict__, "after_id": int(page[-1]["id"])})
            progress.done()
        finally:
            if out is not sys.stdout:
                out.close()
        return 0
    finally:
        conn.close()


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="data directory")
    p.add_argument("--config", help="TOML configuration file")


def add_parser(sub: Any) -> None:
    """Add ``gc`` and ``audit`` to the ``registry`` command's subparsers."""
    gc = sub.add_parser("gc", help="collect garbage online (unreferenced blobs, orphan manifests and referrers)")
    _common(gc)
    gc.add_argument("--dry-run", action="store_true", help="report what would be removed; change nothing")
    gc.add_argument("--grace-period", type=float, help="seconds a blob must be unreferenced (default gc.grace_seconds)")
    gc.add_argument("--json", action="store_true", help="print the report as JSON")
    gc.add_argument(
        "--orphan-files",
        action="store_true",
        help="also walk the blob directory once and delete content files without metadata (crash leftovers)",
    )
    add_progress_flag(gc)
    gc.set_defaults(func=cmd_gc)

    retention = sub.add_parser("retention", help="apply the retention policy (retention.toml) now")
    _common(retention)
    retention.add_argument("--dry-run", action="store_true", help="show exactly what would be deleted")
    retention.add_argument("--json", action="store_true", help="print the report as JSON")
    retention.set_defaults(func=cmd_retention)

    audit = sub.add_parser("audit", help="verify and export the tamper-evident audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the hash chain and the signed checkpoints")
    _common(verify)
    verify.set_defaults(func=cmd_audit)
    checkpoint = audit_sub.add_parser("checkpoint", help="write a signed checkpoint of the current head now")
    _common(checkpoint)
    checkpoint.set_defaults(func=cmd_audit)
    export = audit_sub.add_parser("export", help="write records as JSON lines, oldest first")
    _common(export)
    export.add_argument("--since", help="unix time or ISO 8601")
    export.add_argument("--until", help="unix time or ISO 8601")
    export.add_argument("--event", help="event name, or a prefix ending in '.' or '*'")
    export.add_argument("--actor", help="principal, e.g. user:alice")
    export.add_argument("--outcome", help="success, failure, denied, …")
    export.add_argument("--resource", help="resource prefix, e.g. prod/app")
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    add_progress_flag(export)
    export.set_defaults(func=cmd_audit)
