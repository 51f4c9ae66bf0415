"""``registry audit verify``: recompute the hash chain and check it against the signed checkpoints.

Detects: a modified record (its hash no longer matches), a deleted record (an id gap or a broken ``prev``
link), reordered records (broken links), a truncated tail (a signed checkpoint names a size beyond the
last row, or a head hash that the row at that position no longer has), records dropped from the start
without a signed ``prune`` anchor, and checkpoints whose signature does not verify with any recorded key.
Blocking: run it in a worker thread.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from registry.audit import chain
from registry.audit.checkpoints import CHECKPOINTS_FILE, load_public_keys, read_lines, signature_valid


@dataclass
class VerifyReport:
    records: int = 0
    legacy: int = 0
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(conn: sqlite3.Connection, directory: Path) -> VerifyReport:
    report = VerifyReport()
    keys = load_public_keys(directory)
    docs = read_lines(directory / CHECKPOINTS_FILE)
    for n, doc in enumerate(docs, 1):
        if not signature_valid(doc, keys):
            report.problems.append(f"checkpoint line {n}: signature does not verify")
    signed = [d for n, d in enumerate(docs, 1) if signature_valid(d, keys)]
    anchors = {(int(d["first"]), str(d["prev"])) for d in signed if d.get("type") == "prune"}
    heads = [d for d in signed if d.get("type") == "head"]
    report.checkpoints = len(heads)

    hashes: dict[int, str] = {}
    expected_prev: str | None = None
    last_id: int | None = None
    names = ", ".join(chain.FIELDS)
    for row in conn.execute(f"SELECT {names}, prev, hash FROM audit ORDER BY id"):  # noqa: S608 - constants
        values, prev, digest = tuple(row[: len(chain.FIELDS)]), row[-2], row[-1]
        rid = int(values[0])
        if digest is None:
            if last_id is None or not hashes:
                report.legacy += 1
                last_id = rid
                continue
            report.problems.append(f"record {rid}: has no hash after the chain began (inserted or altered)")
            break
        if expected_prev is None:
            first_ok = prev == chain.GENESIS or (rid, prev) in anchors
            if not first_ok:
                report.problems.append(
                    f"record {rid}: first record does not start the chain and no signed prune anchor covers it"
                )
        elif last_id is not None and rid != last_id + 1:
            report.problems.append(f"records {last_id + 1}..{rid - 1} are missing (deleted)")
        if expected_prev is not None and prev != expected_prev:
            report.problems.append(f"record {rid}: does not link to the record before it (deleted or reordered)")
        if chain.record_hash(prev, values) != digest:
            report.problems.append(f"record {rid}: content does not match its hash (modified)")
        hashes[rid] = digest
        expected_prev = digest
        last_id = rid
        report.records += 1
        if len(report.problems) > 50:
            break

    first = min(hashes) if hashes else None
    for doc in heads:
        size, head = int(doc["size"]), str(doc["head"])
        if first is not None and size < first:
            continue  # pruned by retention (covered by a prune anchor)
        if size not in hashes:
            if last_id is None or size > last_id:
                report.problems.append(f"checkpoint of {size} records: log ends at {last_id or 0} (tail truncated)")
            else:
                report.problems.append(f"checkpoint of {size} records: record {size} is missing")
        elif hashes[size] != head:
            report.problems.append(f"checkpoint of {size} records: head hash differs (records rewritten)")
    return report


def format_report(report: VerifyReport) -> str:
    lines = [
        f"audit records: {report.records} chained, {report.legacy} legacy (before the chain)",
        f"signed checkpoints: {report.checkpoints}",
    ]
    lines += [f"PROBLEM: {p}" for p in report.problems]
    lines.append("audit log: OK" if report.ok else f"audit log: FAILED ({len(report.problems)} problem(s))")
    return "\n".join(lines)
