"""Filtered audit queries (management API, ``registry audit export``) and retention pruning."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from registry.audit import chain
from registry.audit.checkpoints import Checkpointer

KEYS = (*chain.FIELDS, "prev", "hash")


@dataclass(frozen=True)
class AuditFilter:
    since: float | None = None
    until: float | None = None
    event: str | None = None  # exact, or a prefix ending in "." or "*" ("manifest.", "gc.*")
    actor: str | None = None
    outcome: str | None = None
    resource: str | None = None  # prefix
    after_id: int = 0
    limit: int = 1000
    newest_first: bool = False


def _where(f: AuditFilter) -> tuple[str, list[Any]]:
    where, args = ["id > ?"], [f.after_id]  # type: list[str], list[Any]
    if f.since is not None:
        where.append("at >= ?")
        args.append(f.since)
    if f.until is not None:
        where.append("at < ?")
        args.append(f.until)
    if f.event:
        if f.event.endswith(("*", ".")):
            where.append("event LIKE ? ESCAPE '\\'")
            args.append(f.event.rstrip("*").replace("%", "\\%").replace("_", "\\_") + "%")
        else:
            where.append("event = ?")
            args.append(f.event)
    if f.actor:
        where.append("actor = ?")
        args.append(f.actor)
    if f.outcome:
        where.append("outcome = ?")
        args.append(f.outcome)
    if f.resource:
        where.append("resource LIKE ? ESCAPE '\\'")
        args.append(f.resource.replace("%", "\\%").replace("_", "\\_") + "%")
    return " AND ".join(where), args


def count(conn: sqlite3.Connection, f: AuditFilter) -> int:
    """How many records match ``f`` (ignoring ``limit``)."""
    where, args = _where(f)
    return int(conn.execute(f"SELECT COUNT(*) FROM audit WHERE {where}", args).fetchone()[0])  # noqa: S608


def records(conn: sqlite3.Connection, f: AuditFilter) -> list[dict[str, Any]]:
    where, args = _where(f)
    order = "DESC" if f.newest_first else "ASC"
    sql = f"SELECT {', '.join(KEYS)} FROM audit WHERE {where} ORDER BY id {order} LIMIT ?"  # noqa: S608
    rows = conn.execute(sql, (*args, f.limit)).fetchall()
    return [dict(zip(KEYS, r, strict=True)) | {"detail": json.loads(r[7] or "{}")} for r in rows]


def prune(conn: sqlite3.Connection, before: float, checkpointer: Checkpointer) -> int:
    """Delete records older than ``before`` (inside the caller's write transaction), first writing a signed
    ``prune`` anchor naming the first kept record and its ``prev`` hash, so the shortened chain verifies."""
    row = conn.execute("SELECT id, prev FROM audit WHERE at >= ? ORDER BY id LIMIT 1", (before,)).fetchone()
    if row is None:
        return 0  # never empty the log: the newest record anchors the checkpoints
    first, prev = int(row[0]), row[1]
    if prev is None or conn.execute("SELECT 1 FROM audit WHERE id < ?", (first,)).fetchone() is None:
        return 0
    checkpointer.sign_and_append({"type": "prune", "first": first, "prev": prev})
    return conn.execute("DELETE FROM audit WHERE id < ?", (first,)).rowcount
