"""Regression (found by the load soak): the primary's RSS and its open database file descriptors grew with
every burst of load, because each new trio worker thread opened a SQLite connection and the connections of
threads that had exited were kept open forever. They are now closed when a new one is opened."""

from __future__ import annotations

import threading
from pathlib import Path

from registry.storage.sqlite_db import open_database


async def test_connections_of_exited_threads_are_closed(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "registry.db")
    try:
        for _ in range(20):  # twenty short-lived worker threads, one after another
            worker = threading.Thread(target=lambda: db._conn().execute("SELECT 1").fetchone())
            worker.start()
            worker.join()
        assert await db.read(lambda conn: conn.execute("SELECT 1").fetchone()[0]) == 1
        assert db.connection_count() <= 2  # the live trio worker's, and at most the last exited thread's
    finally:
        await db.aclose()
    assert db.connection_count() == 0
