"""The audit hash chain: how a record is appended inside a write transaction, and how its hash is computed.

Each row of ``audit`` carries ``prev`` (the hash of the row before it, or ``GENESIS`` for the first) and
``hash = sha256(prev || "\\n" || canonical JSON of the row's fields)``. Changing, deleting or reordering any
row breaks the chain from that row on; removing rows from the tail is caught by the signed checkpoints
(``registry.audit.checkpoints``). Rows written before the chain existed (``hash`` NULL) are reported as
legacy by the verifier.

This module must not open connections or transactions: callers pass a connection inside ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

GENESIS = "0" * 64
FIELDS = (
    "id",
    "at",
    "event",
    "outcome",
    "actor",
    "credential",
    "source",
    "detail",
    "resource",
    "request_id",
    "user_agent",
)


@dataclass(frozen=True)
class AuditEntry:
    """One audit record to append (never secrets or tokens)."""

    event: str
    outcome: str = "success"
    actor: str = ""
    credential: str | None = None
    source: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    resource: str = ""
    request_id: str = ""
    user_agent: str = ""
    at: float | None = None


def record_hash(prev: str, values: tuple[Any, ...]) -> str:
    """The chained hash of a row: ``values`` in ``FIELDS`` order, ``detail`` as stored (JSON text)."""
    canonical = json.dumps(list(values), separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{prev}\n{canonical}".encode()).hexdigest()


def head(conn: sqlite3.Connection) -> tuple[int, str]:
    """``(last id, its hash)`` of the chain; ``(0, GENESIS)`` when nothing chained exists yet."""
    row = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return 0, GENESIS
    return int(row[0]), row[1] or GENESIS


def append(conn: sqlite3.Connection, entry: AuditEntry) -> int:
    """Append ``entry`` to the chain (inside the caller's write transaction). Returns its id."""
    last_id, prev = head(conn)
    values: tuple[Any, ...] = (
        last_id + 1,
        time.time() if entry.at is None else entry.at,
        entry.event,
        entry.outcome,
        entry.actor,
        entry.credential,
        entry.source[:200],
        json.dumps(entry.detail, sort_keys=True, default=str),
        entry.resource[:500],
        entry.request_id[:200],
        entry.user_agent[:300],
    )
    digest = record_hash(prev, values)
    conn.execute(
        f"INSERT INTO audit({', '.join(FIELDS)}, prev, hash) VALUES ({', '.join('?' * (len(FIELDS) + 2))})",  # noqa: S608 - constant column names
        (*values, prev, digest),
    )
    return last_id + 1
