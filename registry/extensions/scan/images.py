"""Scan images stored in the registry: find the CycloneDX SBOM referrer, match it, keep and publish the report.

Results live in ``scan_results(repo, digest, generation, scanned_at, report)`` (one row per image manifest) in
the registry database; the report is also attached as a referrer (``SCAN_REPORT_ARTIFACT_TYPE``) of the image.
:class:`ScanSubscriber` scans on push: when a manifest whose ``artifactType`` is CycloneDX and which has a
``subject`` lands, its subject is scanned. It ignores everything else, including its own reports.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from registry.extensions.publish import attach_referrer
from registry.extensions.scan.report import SCAN_REPORT_ARTIFACT_TYPE, scan_sbom
from registry.extensions.scan.sbom import CYCLONEDX_ARTIFACT_TYPE
from registry.extensions.vulndb.store import SqliteVulnStore
from registry.oci.digest import Digest
from registry.oci.errors import RegistryError
from registry.storage.records import Event, ManifestRecord
from registry.storage.service import RegistryService
from registry.storage.sqlite_db import SqliteDatabase

log = logging.getLogger("registry.scan")
SBOM_MAX_BYTES = 64 * 1024 * 1024

_DDL = (
    "CREATE TABLE IF NOT EXISTS scan_results (repo TEXT, digest TEXT, generation INTEGER, scanned_at REAL,"
    " report TEXT, PRIMARY KEY (repo, digest))"
)


class NoSbom(LookupError):
    """The image has no CycloneDX SBOM referrer to scan."""


@dataclass(frozen=True)
class _Subject:
    media_type: str
    digest: Digest
    size: int


async def _read_all(service: RegistryService, digest: Digest, size: int) -> bytes:
    parts = [chunk async for chunk in service.read_blob(digest, 0, size - 1)] if size else []
    return b"".join(parts)


async def load_sbom(service: RegistryService, repo: str, subject: Digest) -> dict[str, Any]:
    """The newest CycloneDX SBOM referring to ``subject`` in ``repo``. Raises NoSbom."""
    for referrer in reversed(await service.referrers(repo, subject, CYCLONEDX_ARTIFACT_TYPE)):
        manifest = json.loads((await service.get_manifest(repo, str(referrer.digest))).content)
        for layer in manifest.get("layers", ()):
            size = int(layer.get("size", 0))
            if size > SBOM_MAX_BYTES:
                continue
            digest = Digest.parse(str(layer["digest"]))
            await service.blob_size(repo, digest)
            doc = json.loads(await _read_all(service, digest, size))
            if isinstance(doc, dict) and doc.get("bomFormat") == "CycloneDX":
                return doc
    raise NoSbom(f"{repo}@{subject} has no CycloneDX SBOM referrer")


class ImageScanner:
    """Scans images of one registry and stores the results beside the vulnerability database."""

    def __init__(self, service: RegistryService, db: SqliteDatabase) -> None:
        self.service = service
        self.db = db
        self.vulns = SqliteVulnStore(db)

    async def setup(self) -> None:
        await self.vulns.setup()
        await self.db.write(lambda c: c.execute(_DDL), notify=False)

    async def scan(self, repo: str, reference: str, publish: bool = True) -> dict[str, Any]:
        """Scan ``repo:reference`` (tag or digest); store the report and, with ``publish``, attach it as a
        referrer. Raises NoSbom, or RegistryError when the manifest is unknown."""
        record: ManifestRecord = await self.service.get_manifest(repo, reference)
        subject = _Subject(record.media_type, record.digest, record.size)
        sbom = await load_sbom(self.service, repo, record.digest)
        report = await scan_sbom(
            sbom, self.vulns, {"repository": repo, "digest": str(record.digest), "mediaType": record.media_type}
        )
        payload = json.dumps(report, sort_keys=True).encode()
        if publish:
            report_digest = await attach_referrer(
                self.service,
                repo,
                subject,
                SCAN_REPORT_ARTIFACT_TYPE,
                payload,
                SCAN_REPORT_ARTIFACT_TYPE,
                {"org.opencontainers.image.created": report["scannedAt"]},
            )
            log.info("scanned %s@%s: %s (report %s)", repo, record.digest, report["summary"], report_digest)
        generation = int(report["scanner"]["vulndbGeneration"])

        def save(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO scan_results VALUES (?, ?, ?, ?, ?)",
                (repo, str(record.digest), generation, time.time(), payload.decode()),
            )

        await self.db.write(save, notify=False)
        return report

    async def result(self, repo: str, digest: str) -> dict[str, Any] | None:
        """The stored report of ``repo@digest``, or None. Read-only (safe on the pull path)."""

        def query(conn: sqlite3.Connection) -> Any:
            try:
                sql = "SELECT report FROM scan_results WHERE repo = ? AND digest = ?"
                return conn.execute(sql, (repo, digest)).fetchone()
            except sqlite3.OperationalError:  # nothing scanned yet
                return None

        row = await self.db.read(query)
        return None if row is None else dict(json.loads(row[0]))

    async def stale(self) -> list[tuple[str, str]]:
        """Images whose stored result predates the current database generation (to rescan)."""
        await self.setup()
        generation = await self.vulns.generation()
        rows = await self.db.read(
            lambda c: c.execute("SELECT repo, digest FROM scan_results WHERE generation < ?", (generation,)).fetchall()
        )
        return [(str(r), str(d)) for r, d in rows]

    async def rescan_stale(self) -> int:
        """Rescan every image scanned with an older database; returns how many were rescanned."""
        count = 0
        for repo, digest in await self.stale():
            try:
                await self.scan(repo, digest)
                count += 1
            except (NoSbom, RegistryError, ValueError, KeyError, TypeError) as exc:
                log.warning("rescan of %s@%s failed: %s", repo, digest, exc)
        return count


class ScanSubscriber:
    """Outbox subscriber: scan the subject when a CycloneDX SBOM referrer is pushed."""

    name = "scan"

    def __init__(self, scanner: ImageScanner) -> None:
        self.scanner = scanner

    async def handle(self, event: Event) -> None:
        if event.kind != "manifest.pushed" or event.digest is None:
            return
        record = await self.scanner.service.meta.get_manifest(event.repo, Digest.parse(event.digest))
        if record is None or record.artifact_type != CYCLONEDX_ARTIFACT_TYPE or record.subject is None:
            return
        await self.scanner.setup()
        try:
            await self.scanner.scan(event.repo, str(record.subject))
        except (NoSbom, RegistryError, ValueError, KeyError, TypeError) as exc:
            # subject or SBOM deleted meanwhile, or an SBOM that is not valid JSON: retrying cannot help, and
            # raising would hold up every later event of this subscriber
            log.warning("scan after SBOM %s@%s skipped: %s", event.repo, event.digest, exc)
