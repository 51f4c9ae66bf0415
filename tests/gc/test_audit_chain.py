"""``audit verify`` passes on an untouched log and fails on each kind of tampering: a modified, deleted
or reordered record, a truncated tail, a forged checkpoint; retention pruning keeps the log verifiable."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.audit import chain, query
from registry.audit.checkpoints import CHECKPOINTS_FILE, Checkpointer
from registry.audit.verify import verify
from registry.storage import schema


@pytest.fixture
def log(tmp_path: Path) -> Iterator[tuple[sqlite3.Connection, Checkpointer]]:
    schema.create(tmp_path / "registry.db")
    conn = schema.connect(tmp_path / "registry.db")
    checkpointer = Checkpointer(tmp_path / "audit")
    for n in range(10):
        conn.execute("BEGIN IMMEDIATE")
        chain.append(
            conn,
            chain.AuditEntry(f"manifest.push.{n % 3}", actor="user:alice", resource=f"ns/app:{n}", at=1000.0 + n),
        )
        conn.execute("COMMIT")
        if n in (4, 9):
            checkpointer.checkpoint(conn)
    yield conn, checkpointer
    conn.close()


def problems(conn: sqlite3.Connection, checkpointer: Checkpointer) -> list[str]:
    return verify(conn, checkpointer.directory).problems


def test_untouched_log_verifies(log: tuple[sqlite3.Connection, Checkpointer]) -> None:
    conn, checkpointer = log
    report = verify(conn, checkpointer.directory)
    assert report.ok and report.records == 10 and report.checkpoints == 2


def test_modified_record_is_detected(log: tuple[sqlite3.Connection, Checkpointer]) -> None:
    conn, checkpointer = log
    conn.execute("UPDATE audit SET outcome = 'failure' WHERE id = 3")
    assert any("record 3" in p and "modified" in p for p in problems(conn, checkpointer))


def test_deleted_record_is_detected(log: tuple[sqlite3.Connection, Checkpointer]) -> None:
    conn, checkpointer = log
    conn.execute("DELETE FROM audit WHERE id = 6")
    assert any("missing" in p for p in problems(conn, checkpointer))


def test_reordered_records_are_detected(log: tuple[sqlite3.Connection, Checkpointer]) -> None:
    conn, checkpointer = log
    cols = [c for c in (*chain.FIELDS, "prev", "hash") if c != "id"]
    a = conn.execute(f"SELECT {', '.join(cols)} FROM audit WHERE id = 2").fetchone()
    b = conn.execute(f"SELECT {', '.join(cols)} FROM audit WHERE id = 3").fetchone()
    sets = ", ".join(f"{c} = ?" for c in cols)
    conn.execute(f"UPDATE audit SET {sets} WHERE id = 2", b)
    conn.execute(f"UPDATE audit SET {sets} WHERE id = 3", a)
    assert any("does not link" in p or "modified" in p for p in problems(conn, checkpointer))


def test_truncated_tail_is_detected(log: tuple[sqlite3.Connection, Checkpointer]) -> None:
    conn, checkpointer = log
    conn.execute("DELETE FROM audit WHERE id > 7")  # the chain itself is still consistent
    assert any("tail truncated" in p for p in problems(conn, checkpointer))


def test_rewritten_chain_is_detected_by_the_signed_head(log: tuple[sqlite3.Connection, Checkpointer]) -> None:
    conn, checkpointer = log
    # An attacker with database access rewrites record 8 and recomputes every hash after it.
    conn.execute("UPDATE audit SET actor = 'user:mallory' WHERE id = 8")
    prev = conn.execute("SELECT hash FROM audit WHERE id = 7").fetchone()[0]
    for row in conn.execute(f"SELECT {', '.join(chain.FIELDS)} FROM audit WHERE id >= 8 ORDER BY id").fetchall():
        digest = chain.record_hash(prev, tuple(row))
        conn.execute("UPDATE audit SET prev = ?, hash = ? WHERE id = ?", (prev, digest, row[0]))
        prev = digest
    assert any("head hash differs" in p for p in problems(conn, checkpointer))


def test_forged_checkpoint_is_detected(log: tuple[sqlite3.Connection, Checkpointer]) -> None:
    conn, checkpointer = log
    path = checkpointer.directory / CHECKPOINTS_FILE
    lines = path.read_text().splitlines()
    doc = json.loads(lines[-1])
    doc["size"] = 5
    path.write_text("\n".join([*lines[:-1], json.dumps(doc)]) + "\n")
    assert any("signature" in p for p in problems(conn, checkpointer))


def test_old_checkpoints_verify_after_key_rotation_and_pruning_keeps_the_log_valid(
    log: tuple[sqlite3.Connection, Checkpointer],
) -> None:
    conn, checkpointer = log
    checkpointer.rotate()
    conn.execute("BEGIN IMMEDIATE")
    chain.append(conn, chain.AuditEntry("gc.run", at=time.time()))
    conn.execute("COMMIT")
    checkpointer.checkpoint(conn)
    assert verify(conn, checkpointer.directory).ok
    conn.execute("BEGIN IMMEDIATE")
    assert query.prune(conn, 1005.0, checkpointer) == 5
    conn.execute("COMMIT")
    report = verify(conn, checkpointer.directory)
    assert report.ok and report.records == 6, report.problems
    # Dropping records from the start without the signed anchor is detected.
    conn.execute("DELETE FROM audit WHERE id = 6")
    assert any("does not start the chain" in p for p in problems(conn, checkpointer))


def test_query_filters(log: tuple[sqlite3.Connection, Checkpointer]) -> None:
    conn, _ = log
    assert len(query.records(conn, query.AuditFilter(event="manifest.push."))) == 10
    assert len(query.records(conn, query.AuditFilter(event="manifest.push.0"))) == 4
    assert [r["id"] for r in query.records(conn, query.AuditFilter(since=1003.0, until=1005.0))] == [4, 5]
    assert query.records(conn, query.AuditFilter(actor="user:bob")) == []
    assert len(query.records(conn, query.AuditFilter(resource="ns/app:1"))) == 1
