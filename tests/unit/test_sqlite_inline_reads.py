"""``SqliteDatabase.read_inline``: point reads on the event loop that never wait on a lock there."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from registry.storage.sqlite_db import open_database


async def test_inline_read_sees_commits_of_other_connections(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "r.db")
    try:
        await db.write(lambda c: c.execute("CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT)"))
        await db.write(lambda c: c.execute("INSERT INTO kv VALUES ('a', '1')"))
        query = lambda c: c.execute("SELECT v FROM kv WHERE k = 'a'").fetchone()  # noqa: E731
        assert await db.read_inline(query) == ("1",)
        other = sqlite3.connect(tmp_path / "r.db", isolation_level=None)
        other.execute("UPDATE kv SET v = '2' WHERE k = 'a'")  # a CLI beside the server
        other.close()
        assert await db.read_inline(query) == ("2",)
    finally:
        await db.aclose()


async def test_busy_answer_is_retried_in_a_worker_thread(tmp_path: Path) -> None:
    # A reader in WAL mode is refused only in rare moments (WAL recovery, an exclusive-mode holder) that a test
    # cannot provoke reliably while the store keeps its own connections open: the query answers "busy" on the
    # event loop's connection the way SQLite reports it, and must then run again in a worker thread.
    db = await open_database(tmp_path / "r.db")
    try:
        await db.write(lambda c: c.execute("CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT)"))
        await db.write(lambda c: c.execute("INSERT INTO kv VALUES ('a', '1')"))
        loop_thread = threading.get_ident()
        ran_on: list[int] = []

        def query(c: sqlite3.Connection) -> object:
            ran_on.append(threading.get_ident())
            if threading.get_ident() == loop_thread:
                raise sqlite3.OperationalError("database is locked")
            return c.execute("SELECT v FROM kv WHERE k = 'a'").fetchone()

        assert await db.read_inline(query) == ("1",)
        assert ran_on[0] == loop_thread and ran_on[1] != loop_thread and len(ran_on) == 2
    finally:
        await db.aclose()


async def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "r.db")
    try:
        calls: list[int] = []

        def query(c: sqlite3.Connection) -> object:
            calls.append(1)
            return c.execute("SELECT * FROM missing_table").fetchone()

        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            await db.read_inline(query)
        assert len(calls) == 1
    finally:
        await db.aclose()
