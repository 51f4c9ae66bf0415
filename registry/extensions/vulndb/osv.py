"""OSV evaluation: does a record affect ``(ecosystem, package, version)``? Pure, no I/O.

Implements the OSV schema's evaluation rules: an ``affected`` entry matches when the version is listed in
``versions`` or falls into one of its ``ECOSYSTEM``/``SEMVER`` ranges. A range's events are sorted by version
(``introduced: "0"`` first) and walked: ``introduced`` opens the range, ``fixed`` closes it at that version,
``last_affected`` closes it after that version; ``limit`` events bound the whole range from above
(the version must be below some limit). ``GIT`` ranges are not evaluated (no commits in an SBOM).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from registry.extensions.vulndb.versions import Comparator, UnsupportedVersion, comparator_for, semver_compare

Record = Mapping[str, Any]
_KINDS = ("introduced", "fixed", "last_affected", "limit")


@dataclass(frozen=True)
class Finding:
    """One record affecting one package version."""

    id: str
    aliases: tuple[str, ...]
    severity: str
    fixed: tuple[str, ...]


def _events(range_: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    for event in range_.get("events", ()):
        for kind in _KINDS:
            if kind in event:
                out.append((kind, str(event[kind])))
    return out


def range_includes(events: Iterable[tuple[str, str]], version: str, compare: Comparator) -> bool:
    """Apply one range's events to ``version`` (see module docstring). Raises UnsupportedVersion."""

    def order(x: tuple[str, str], y: tuple[str, str]) -> int:
        if x[1] == y[1]:
            return 0
        if x[0] == "introduced" and x[1] == "0":
            return -1
        if y[0] == "introduced" and y[1] == "0":
            return 1
        return compare(x[1], y[1])

    events = list(events)
    limits = [v for kind, v in events if kind == "limit"]
    if limits and not any(compare(version, limit) < 0 for limit in limits):
        return False
    affected = False
    for kind, value in sorted((e for e in events if e[0] != "limit"), key=functools.cmp_to_key(order)):
        if kind == "introduced" and (value == "0" or compare(version, value) >= 0):
            affected = True
        elif kind == "fixed" and compare(version, value) >= 0:
            affected = False
        elif kind == "last_affected":
            affected = affected and compare(version, value) <= 0
    return affected


def _fixed_versions(affected: Mapping[str, Any]) -> list[str]:
    return [v for r in affected.get("ranges", ()) for kind, v in _events(r) if kind == "fixed"]


def severity_of(record: Record, affected: Mapping[str, Any]) -> str:
    """CRITICAL/HIGH/MEDIUM/LOW/NEGLIGIBLE/UNKNOWN from the fields OSV producers use for a label."""
    specific = (affected.get("ecosystem_specific"), affected.get("database_specific"), record.get("database_specific"))
    for source in specific:
        if isinstance(source, Mapping):
            label = source.get("severity") or source.get("urgency")
            if isinstance(label, str) and label:
                return normalize_severity(label)
    return "UNKNOWN"


def normalize_severity(label: str) -> str:
    key = label.strip().upper().rstrip("*").strip()
    key = {"MODERATE": "MEDIUM", "IMPORTANT": "HIGH", "UNIMPORTANT": "NEGLIGIBLE", "NOT YET ASSIGNED": "UNKNOWN"}.get(
        key, key
    )
    return key if key in SEVERITIES else "UNKNOWN"


SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "NEGLIGIBLE", "UNKNOWN")


def evaluate(record: Record, ecosystem: str, package: str, version: str) -> Finding | None:
    """The finding ``record`` yields for the package, or None if it does not affect it.

    ``ecosystem`` is compared exactly (``Debian:12``); package names exactly, except PyPI names, which are
    compared in PEP 503 normal form. Versions that the ecosystem cannot order make a range not match.
    """
    if record.get("withdrawn"):
        return None
    compare = comparator_for(ecosystem)
    for affected in record.get("affected", ()):
        pkg = affected.get("package", {})
        if pkg.get("ecosystem") != ecosystem or not same_name(ecosystem, pkg.get("name", ""), package):
            continue
        hit = version in affected.get("versions", ())
        for range_ in affected.get("ranges", ()):
            if hit:
                break
            kind = range_.get("type")
            cmp = semver_compare if kind == "SEMVER" else compare if kind == "ECOSYSTEM" else None
            if cmp is None:
                continue
            try:
                hit = range_includes(_events(range_), version, cmp)
            except UnsupportedVersion:
                continue
        if hit:
            return Finding(
                id=str(record["id"]),
                aliases=tuple(record.get("aliases", ())),
                severity=severity_of(record, affected),
                fixed=tuple(_fixed_versions(affected)),
            )
    return None


def same_name(ecosystem: str, a: str, b: str) -> bool:
    if ecosystem == "PyPI":
        return normalize_pypi(a) == normalize_pypi(b)
    return a == b


def normalize_pypi(name: str) -> str:
    return "-".join(part for part in name.lower().replace("_", "-").replace(".", "-").split("-") if part)


def affected_keys(record: Record) -> set[tuple[str, str]]:
    """``(ecosystem, package name)`` pairs the record may affect (the store's lookup index)."""
    keys = set()
    for affected in record.get("affected", ()):
        pkg = affected.get("package", {})
        eco, name = pkg.get("ecosystem"), pkg.get("name")
        if isinstance(eco, str) and isinstance(name, str):
            keys.add((eco, normalize_pypi(name) if eco == "PyPI" else name))
    return keys
