"""The vulnerability database: OSV records in the registry's metadata store (SQLite).

Tables (created by this extension, beside the core schema, in ``registry.db``):
  vuln_records(source, id, modified, record)     one OSV record (JSON) per source and id
  vuln_affected(ecosystem, package, source, id)  lookup index: which records name which package
  vuln_sources(source, imported_at, records, origin)   one row per source, replaced on every import
  vuln_meta(key='generation', value)             bumped by every import; scan results remember it
Importing a snapshot file (secdb, tracker) replaces everything of its source; OSV records are added or
replaced by id (so the per-ecosystem dumps can be imported one by one).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from registry.extensions.vulndb.importers import Batch
from registry.extensions.vulndb.osv import affected_keys, normalize_pypi
from registry.storage.sqlite_db import SqliteDatabase

_DDL = """
CREATE TABLE IF NOT EXISTS vuln_records (source TEXT, id TEXT, modified TEXT, record TEXT, PRIMARY KEY (source, id));
CREATE TABLE IF NOT EXISTS vuln_affected (ecosystem TEXT, package TEXT, source TEXT, id TEXT);
CREATE INDEX IF NOT EXISTS vuln_affected_pkg ON vuln_affected (ecosystem, package);
CREATE INDEX IF NOT EXISTS vuln_affected_rec ON vuln_affected (source, id);
CREATE TABLE IF NOT EXISTS vuln_sources (source TEXT PRIMARY KEY, imported_at REAL, records INTEGER, origin TEXT);
CREATE TABLE IF NOT EXISTS vuln_meta (key TEXT PRIMARY KEY, value INTEGER);
"""


@dataclass(frozen=True)
class SourceStatus:
    source: str
    imported_at: float
    records: int
    origin: str


def ensure_schema(conn: sqlite3.Connection) -> None:
    for statement in _DDL.strip().split(";\n"):
        conn.execute(statement)


def _replace(conn: sqlite3.Connection, batches: Sequence[tuple[Batch, str]], now: float) -> int:
    ensure_schema(conn)
    merged: dict[str, tuple[dict[str, dict[str, Any]], list[str], bool]] = {}
    for batch, origin in batches:
        records, origins, _ = merged.setdefault(batch.source, ({}, [], batch.snapshot))
        records.update({str(r["id"]): r for r in batch.records})
        origins.append(origin)
    for source, (records, origins, snapshot) in merged.items():
        if snapshot:
            conn.execute("DELETE FROM vuln_records WHERE source = ?", (source,))
            conn.execute("DELETE FROM vuln_affected WHERE source = ?", (source,))
        else:
            conn.executemany(
                "DELETE FROM vuln_affected WHERE source = ? AND id = ?", [(source, vid) for vid in records]
            )
            previous = conn.execute("SELECT origin FROM vuln_sources WHERE source = ?", (source,)).fetchone()
            if previous and previous[0]:
                origins = [*str(previous[0]).split(", "), *origins]
        conn.executemany(
            "INSERT OR REPLACE INTO vuln_records VALUES (?, ?, ?, ?)",
            [(source, vid, str(r.get("modified", "")), json.dumps(r, sort_keys=True)) for vid, r in records.items()],
        )
        conn.executemany(
            "INSERT INTO vuln_affected VALUES (?, ?, ?, ?)",
            [(eco, name, source, vid) for vid, r in records.items() for eco, name in affected_keys(r)],
        )
        (count,) = conn.execute("SELECT COUNT(*) FROM vuln_records WHERE source = ?", (source,)).fetchone()
        origin_text = ", ".join(dict.fromkeys(origins))
        conn.execute("INSERT OR REPLACE INTO vuln_sources VALUES (?, ?, ?, ?)", (source, now, count, origin_text))
    conn.execute("INSERT INTO vuln_meta VALUES ('generation', 1) ON CONFLICT(key) DO UPDATE SET value = value + 1")
    return _generation(conn)


def _generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM vuln_meta WHERE key = 'generation'").fetchone()
    return int(row[0]) if row else 0


class SqliteVulnStore:
    """Reads and writes the tables above through the registry's :class:`SqliteDatabase`."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def setup(self) -> None:
        await self.db.write(ensure_schema, notify=False)

    async def replace(self, batches: Sequence[tuple[Batch, str]], now: float | None = None) -> int:
        """Replace the sources of ``batches`` (pairs of batch and origin file name) in one transaction.
        Returns the new database generation."""
        stamp = time.time() if now is None else now
        return await self.db.write(lambda conn: _replace(conn, batches, stamp), notify=False)

    async def generation(self) -> int:
        await self.setup()
        return await self.db.read(_generation)

    async def status(self) -> list[SourceStatus]:
        await self.setup()
        rows = await self.db.read(
            lambda c: c.execute(
                "SELECT source, imported_at, records, origin FROM vuln_sources ORDER BY source"
            ).fetchall()
        )
        return [SourceStatus(str(s), float(t), int(n), str(o)) for s, t, n, o in rows]

    async def candidates(self, ecosystem: str, package: str) -> list[dict[str, Any]]:
        """Records naming ``package`` in ``ecosystem`` (to be evaluated with :func:`osv.evaluate`)."""
        key = normalize_pypi(package) if ecosystem == "PyPI" else package

        def query(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT DISTINCT r.record FROM vuln_affected a JOIN vuln_records r"
                " ON r.source = a.source AND r.id = a.id WHERE a.ecosystem = ? AND a.package = ?",
                (ecosystem, key),
            ).fetchall()
            return [str(row[0]) for row in rows]

        return [json.loads(text) for text in await self.db.read(query)]
