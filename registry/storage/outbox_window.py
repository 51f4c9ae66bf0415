"""Pruning of the ``outbox`` table, and the watermark that tells feed consumers what was pruned.

Layout (in the metadata database):
  outbox(id, at, kind, repo, digest, tag, data)   ids are SQLite rowids: the newest row is never deleted, so
                                                  an id is never reused (a reused id would replay as new)
  meta('outbox_pruned_through', id)               the highest id ever pruned (0: nothing pruned)

An event is pruned only when every in-process subscriber (``outbox_cursors``) has handled it, and only when it
is older than the retention window or beyond the row cap. Functions here take a connection inside the
caller's transaction (``SqliteDatabase.write`` / ``read``); :class:`SqliteOutboxWindow` runs them off the
event loop for the event feed and the maintenance loop.
"""

from __future__ import annotations

import sqlite3
import time

from registry.storage.records import Event
from registry.storage.sqlite_db import SqliteDatabase

PRUNED_KEY = "outbox_pruned_through"


def pruned_through(conn: sqlite3.Connection) -> int:
    """The highest outbox id that was pruned (0 when none was)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (PRUNED_KEY,)).fetchone()
    return 0 if row is None else int(row[0])


def head(conn: sqlite3.Connection) -> int:
    """The newest outbox id (0 for an empty outbox)."""
    row = conn.execute("SELECT MAX(id) FROM outbox").fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


def prune(conn: sqlite3.Connection, before: float | None, max_rows: int) -> int:
    """Delete events older than ``before`` (None: no age limit) or beyond the newest ``max_rows``
    (0: no cap) that every subscriber has handled; never the newest. Returns the number deleted."""
    newest = head(conn)
    if newest == 0:
        return 0
    row = conn.execute("SELECT MIN(last_id) FROM outbox_cursors").fetchone()
    limit = newest - 1 if row is None or row[0] is None else min(newest - 1, int(row[0]))
    through = 0
    if before is not None:
        found = conn.execute("SELECT MAX(id) FROM outbox WHERE at < ? AND id <= ?", (before, limit)).fetchone()
        through = int(found[0] or 0)
    if max_rows > 0:
        found = conn.execute("SELECT id FROM outbox ORDER BY id DESC LIMIT 1 OFFSET ?", (max_rows,)).fetchone()
        if found is not None:
            through = max(through, min(int(found[0]), limit))
    if through <= 0:
        return 0
    deleted = conn.execute("DELETE FROM outbox WHERE id <= ?", (through,)).rowcount
    if deleted:
        conn.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = "
            "MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
            (PRUNED_KEY, str(through)),
        )
    return int(deleted)


class SqliteOutboxWindow:
    """What the event feed reads of the outbox (and the pruning the maintenance loop does), on ``db``."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def events_after(self, cursor: int, limit: int) -> list[Event]:
        def q(conn: sqlite3.Connection) -> list[Event]:
            rows = conn.execute(
                "SELECT id, at, kind, repo, digest, tag, data FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (cursor, limit),
            ).fetchall()
            return [Event(*row) for row in rows]

        return await self.db.read(q)

    async def head(self) -> int:
        return await self.db.read(head)

    async def head_inline(self) -> int:
        """:meth:`head` as a point read on the event loop (polled by every worker process)."""
        return await self.db.read_inline(head)

    async def pruned_through(self) -> int:
        return await self.db.read(pruned_through)

    async def prune(self, retention_days: float, max_rows: int, now: float | None = None) -> int:
        """Apply the retention window (``events.retention_days``, ``events.retention_max_rows``)."""
        at = time.time() if now is None else now
        before = at - retention_days * 86400 if retention_days > 0 else None
        return await self.db.write(lambda conn: prune(conn, before, max_rows), notify=False)
