"""SqliteDatabase: one SQLite file shared by the stores that live in it (metadata, IAM, keys, audit).

Threading: sqlite3 connections are tied to their thread and ``trio.to_thread`` may run each call on a
different worker thread, so every worker thread gets its own connection (``threading.local``). trio's idle
worker threads exit after a while and new ones start under the next burst: the connections of threads that
have exited are closed whenever a new one is opened, so their number (file descriptors, page caches) stays
bounded by the live threads instead of growing with every burst (the load soak found that). Writes go
through a CapacityLimiter of 1 (a single writer in this process) and ``BEGIN IMMEDIATE`` with a busy
timeout, so CLI commands running beside the server queue instead of failing.

Point reads on the event loop: ``read_inline`` runs a tiny lookup (a primary-key SELECT: a manifest by tag,
a blob's size) on the calling thread with its own connection whose busy timeout is 0, instead of a
``to_thread`` round trip that costs more than the query. If SQLite answers "busy"/"locked" (WAL recovery,
a rare checkpoint edge) the same function is retried in a worker thread, so the loop never waits on a lock;
only page-cache misses of those few pages can block it, briefly.

Durability: ``synchronous=FULL`` makes COMMIT fsync the WAL, so a transaction that returned has reached
the disk before the HTTP layer answers.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import trio

from registry.storage import schema
from registry.storage.faults import sqlite_fault

T = TypeVar("T")


class SqliteDatabase:
    """See module docstring. Create with :func:`open_database`; ``aclose()`` when done."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._inline = threading.local()
        self._conns: dict[threading.Thread, sqlite3.Connection] = {}
        self._inline_conns: list[sqlite3.Connection] = []  # one per event-loop thread (read_inline)
        self._conns_lock = threading.Lock()
        self._write_limiter = trio.CapacityLimiter(1)
        self._read_limiter = trio.CapacityLimiter(8)
        self.on_commit: Callable[[], None] | None = None

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = schema.connect(self.path)
            self._local.conn = conn
            with self._conns_lock:
                dead = [self._conns.pop(t) for t in list(self._conns) if not t.is_alive()]
                self._conns[threading.current_thread()] = conn
            for stale in dead:  # their threads have exited: nothing can be using them
                stale.close()
        return conn

    def connection_count(self) -> int:
        """Connections open now (one per worker thread that has used the database and may still)."""
        with self._conns_lock:
            return len(self._conns)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in a worker thread (autocommit reads see the latest commit).

        Raises:
            RegistryError: a storage fault (see ``registry.storage.faults``); other SQLite errors propagate.
        """
        try:
            return await trio.to_thread.run_sync(lambda: fn(self._conn()), limiter=self._read_limiter)
        except sqlite3.Error as exc:
            fault = sqlite_fault(exc)
            if fault is None:
                raise
            raise fault from exc

    async def read_inline(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run the small read ``fn(conn)`` on this thread (see module docstring); ``fn`` must be a
        point lookup, and must let ``sqlite3.OperationalError`` escape so a busy database can be retried
        in a worker thread."""
        try:
            conn: sqlite3.Connection | None = getattr(self._inline, "conn", None)
            if conn is None:
                conn = schema.connect(self.path, busy_timeout_ms=0)
                self._inline.conn = conn
                with self._conns_lock:
                    self._inline_conns.append(conn)
            return fn(conn)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
        return await self.read(fn)

    async def write(self, fn: Callable[[sqlite3.Connection], T], notify: bool = True) -> T:
        """Run ``fn(conn)`` inside ``BEGIN IMMEDIATE … COMMIT`` (rolled back if it raises).

        ``notify``: call ``on_commit`` afterwards (wakes the outbox relay).

        Raises:
            RegistryError: a storage fault — the database is locked past the busy timeout, full, or not
                writable (see ``registry.storage.faults``); nothing was committed. Other errors propagate.
        """

        def run() -> T:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                # SQLite rolls back by itself on some failures (SQLITE_FULL at COMMIT, for one); a second
                # ROLLBACK would raise and hide the real error.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        try:
            result = await trio.to_thread.run_sync(run, limiter=self._write_limiter)
        except sqlite3.Error as exc:
            fault = sqlite_fault(exc)
            if fault is None:
                raise
            raise fault from exc
        if notify and self.on_commit is not None:
            self.on_commit()
        return result

    async def aclose(self) -> None:
        with self._conns_lock:
            conns, self._conns = list(self._conns.values()), {}
            conns += self._inline_conns
            self._inline_conns = []
        for conn in conns:
            conn.close()


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return int(code) & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc)
    return "locked" in text or "busy" in text


async def open_database(path: Path) -> SqliteDatabase:
    """Create or migrate the schema and return the database. The caller must ``aclose()`` it."""
    await trio.to_thread.run_sync(schema.create, path)
    return SqliteDatabase(path)
