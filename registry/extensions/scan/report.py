"""Scan an SBOM against the vulnerability database and build the scan report document.

The report (``application/vnd.registry.scan-report.v1+json``; schema in docs/scanning.md) lists one entry per
(vulnerability id, package) with the installed and fixed versions, plus counts by severity. It records the
database generation it was computed with, so a changed database can be detected and everything rescanned.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

from registry.extensions.scan.sbom import packages
from registry.extensions.vulndb.osv import SEVERITIES, evaluate

SCAN_REPORT_ARTIFACT_TYPE = "application/vnd.registry.scan-report.v1+json"
_RANK = {name: i for i, name in enumerate(SEVERITIES)}


class VulnSource(Protocol):
    async def candidates(self, ecosystem: str, package: str) -> list[dict[str, Any]]: ...

    async def generation(self) -> int: ...


async def scan_sbom(
    sbom: Mapping[str, Any], db: VulnSource, subject: Mapping[str, Any] | None = None, now: float | None = None
) -> dict[str, Any]:
    """Match every package of the CycloneDX ``sbom`` and return the report document."""
    found, skipped = packages(sbom)
    vulns: list[dict[str, Any]] = []
    for pkg in found:
        for record in await db.candidates(pkg.ecosystem, pkg.name):
            finding = evaluate(record, pkg.ecosystem, pkg.name, pkg.version)
            if finding is None:
                continue
            vulns.append(
                {
                    "id": finding.id,
                    "aliases": list(finding.aliases),
                    "severity": finding.severity,
                    "package": {
                        "ecosystem": pkg.ecosystem,
                        "name": pkg.installed_name,
                        "sourceName": pkg.name,
                        "purl": pkg.purl,
                    },
                    "installedVersion": pkg.installed_version,
                    "matchedVersion": pkg.version,
                    "fixedVersions": list(finding.fixed),
                }
            )
    vulns.sort(key=lambda v: (_RANK[v["severity"]], v["id"], v["package"]["name"]))
    summary = {name: 0 for name in SEVERITIES}
    for v in vulns:
        summary[v["severity"]] += 1
    return {
        "schemaVersion": 1,
        "subject": dict(subject or {}),
        "scanner": {"name": "registry", "vulndbGeneration": await db.generation()},
        "scannedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now)),
        "packages": len(found),
        "unmatchedPurls": skipped,
        "summary": summary,
        "vulnerabilities": vulns,
    }
