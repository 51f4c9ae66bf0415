"""Storage faults translated at the adapters, without a tmpfs: SQLite full (``max_page_count``), locked by
another connection (a short busy timeout), and file-system errors from ``FilesystemBlobStore``."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from registry.oci import errors as e
from registry.storage import schema
from registry.storage.faults import os_fault, sqlite_fault
from registry.storage.sqlite_db import open_database
from tests.faults.conftest import survived


async def test_database_full_at_commit_is_507_and_the_connection_stays_usable(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "registry.db")
    try:
        await db.write(lambda conn: conn.execute("CREATE TABLE pad (data BLOB)"))
        pages = await db.read(lambda conn: conn.execute("PRAGMA page_count").fetchone()[0])

        def grow(conn: sqlite3.Connection) -> None:
            conn.execute(f"PRAGMA max_page_count={pages + 4}")
            conn.execute("INSERT INTO pad VALUES (?)", (b"x" * 200_000,))

        with pytest.raises(e.RegistryError) as full:
            await db.write(grow)
        assert (full.value.status, full.value.code.code) == (507, "UNAVAILABLE")
        count = await db.read(lambda conn: conn.execute("SELECT COUNT(*) FROM pad").fetchone()[0])
        assert count == 0, "nothing of the failed transaction is visible"
        await db.write(lambda conn: conn.execute("INSERT INTO pad VALUES (?)", (b"small",)))
        survived("unit: sqlite full")
    finally:
        await db.aclose()


async def test_database_locked_past_the_busy_timeout_is_503_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schema, "BUSY_TIMEOUT_MS", 200)
    db = await open_database(tmp_path / "registry.db")
    holder = sqlite3.connect(tmp_path / "registry.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(e.RegistryError) as busy:
            await db.write(lambda conn: conn.execute("CREATE TABLE t (x)"))
        assert (busy.value.status, busy.value.code.code) == (503, "UNAVAILABLE")
        assert busy.value.headers["Retry-After"].isdigit()
        holder.execute("ROLLBACK")
        await db.write(lambda conn: conn.execute("CREATE TABLE t (x)"))
        survived("unit: sqlite locked")
    finally:
        holder.close()
        await db.aclose()


def test_fault_table() -> None:
    statuses = {
        errno.ENOSPC: 507,
        errno.EDQUOT: 507,
        errno.EROFS: 503,
        errno.EACCES: 503,
        errno.EPERM: 503,
    }
    for number, status in statuses.items():
        fault = os_fault(OSError(number, "injected"))
        assert fault is not None and fault.status == status and fault.code.code == "UNAVAILABLE"
    assert os_fault(OSError(errno.ENOENT, "not a storage fault")) is None
    assert sqlite_fault(sqlite3.OperationalError("no such table: x")) is None
