"""Read vulnerability data files and convert them to OSV records. Pure apart from reading the given file.

Formats (detected from content, not from the file name):
- OSV JSON: one record (an object with ``id`` and ``affected``/``modified``), or a JSON array of records;
  a zip file of such records (the per-ecosystem ``all.zip`` dumps of osv.dev).
- Alpine secdb (``secdb.alpinelinux.org/v3.19/main.json``): ``secfixes`` of each package (the origin, i.e. source
  package) become ``Alpine:v3.19`` records with ``introduced: 0`` and ``fixed: <version>``; a fix at ``0``
  means "never affected" and is skipped.
- Debian security tracker (``security-tracker.debian.org/tracker/data/json``): every release with a known
  codename becomes ``Debian:<N>`` (``resolved`` → fixed at ``fixed_version``, ``open`` → affected with no fix;
  ``undetermined`` and fixes at ``0`` are skipped), severity from the tracker's ``urgency``.
Converted records carry ``database_specific.source`` naming the source; one OSV record per vulnerability id
and source. Secdb and tracker files are full snapshots of their source (``alpine:v3.19/main``, ``debian``); OSV
files add to or update the ``osv`` source by record id.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEBIAN_CODENAMES = {
    "wheezy": "7",
    "jessie": "8",
    "stretch": "9",
    "buster": "10",
    "bullseye": "11",
    "bookworm": "12",
    "trixie": "13",
    "forky": "14",
    "duke": "15",
}


class ImportFormatError(ValueError):
    """The file is not in a supported vulnerability data format."""


@dataclass(frozen=True)
class Batch:
    """Records read from one file, under one source name (``osv``, ``alpine:v3.19/main``, ``debian``).

    ``snapshot``: the file is the source's full state (secdb, tracker), so importing it replaces the source;
    otherwise (OSV) its records are added or updated by id."""

    source: str
    records: list[dict[str, Any]]
    snapshot: bool = False


def read_file(path: Path) -> Batch:
    """Read and convert ``path``. Raises ImportFormatError for anything unrecognised."""
    if zipfile.is_zipfile(path):
        return Batch("osv", list(_osv_zip(path)))
    try:
        doc = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportFormatError(f"{path}: not JSON or zip: {exc}") from exc
    return convert(doc, str(path))


def convert(doc: Any, name: str = "document") -> Batch:
    if isinstance(doc, list) and all(_is_osv(r) for r in doc):
        return Batch("osv", [dict(r) for r in doc])
    if _is_osv(doc):
        return Batch("osv", [dict(doc)])
    if isinstance(doc, dict) and "packages" in doc and "distroversion" in doc:
        return alpine_secdb(doc)
    if isinstance(doc, dict) and doc and all(_looks_debian(v) for v in list(doc.values())[:20]):
        return debian_tracker(doc)
    raise ImportFormatError(f"{name}: neither OSV, Alpine secdb nor Debian security tracker JSON")


def _is_osv(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("id"), str) and ("affected" in doc or "modified" in doc)


def _looks_debian(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, dict) and "releases" in v for v in value.values())


def _osv_zip(path: Path) -> Iterator[dict[str, Any]]:
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            doc = json.loads(archive.read(info))
            if not _is_osv(doc):
                raise ImportFormatError(f"{path}!{info.filename}: not an OSV record")
            yield doc


def _record(vid: str, source: str, summary: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"schema_version": "1.6.0", "id": vid, "modified": "", "affected": []}
    if summary:
        record["summary"] = summary
    if vid.startswith("CVE-"):
        record["aliases"] = []
    record["database_specific"] = {"source": source}
    return record


def _affected(ecosystem: str, name: str, fixed: str | None, severity: str | None = None) -> dict[str, Any]:
    events: list[dict[str, str]] = [{"introduced": "0"}]
    if fixed is not None:
        events.append({"fixed": fixed})
    entry: dict[str, Any] = {
        "package": {"ecosystem": ecosystem, "name": name},
        "ranges": [{"type": "ECOSYSTEM", "events": events}],
    }
    if severity:
        entry["ecosystem_specific"] = {"urgency": severity}
    return entry


def alpine_secdb(doc: Mapping[str, Any]) -> Batch:
    release = str(doc["distroversion"])
    if not release.startswith("v"):
        release = "v" + release
    ecosystem, source = f"Alpine:{release}", f"alpine:{release}/{doc.get('reponame', 'main')}"
    records: dict[str, dict[str, Any]] = {}
    for item in doc.get("packages", ()):
        pkg = item.get("pkg", {})
        name = pkg.get("name")
        for fixed, ids in (pkg.get("secfixes") or {}).items():
            if not name or str(fixed) == "0":
                continue
            for raw in ids or ():
                vid = str(raw).split()[0]  # entries may read "CVE-2021-1234 XSA-123"
                rec = records.setdefault(vid, _record(vid, source))
                rec["affected"].append(_affected(ecosystem, name, str(fixed)))
    return Batch(source, list(records.values()), snapshot=True)


def debian_tracker(doc: Mapping[str, Any]) -> Batch:
    records: dict[str, dict[str, Any]] = {}
    for package, vulns in doc.items():
        for vid, info in vulns.items():
            for codename, rel in (info.get("releases") or {}).items():
                number = DEBIAN_CODENAMES.get(codename)
                status = rel.get("status")
                fixed = rel.get("fixed_version")
                if number is None or status not in ("resolved", "open"):
                    continue
                if status == "resolved" and (not fixed or fixed == "0"):
                    continue
                rec = records.setdefault(vid, _record(vid, "debian", info.get("description")))
                urgency = rel.get("urgency")
                rec["affected"].append(
                    _affected(f"Debian:{number}", package, fixed if status == "resolved" else None, urgency)
                )
    return Batch("debian", list(records.values()), snapshot=True)
