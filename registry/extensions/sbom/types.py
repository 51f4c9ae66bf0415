"""Artifact types of the supply-chain extension (shared by SBOM, attestation and the scan report)."""

from __future__ import annotations

CYCLONEDX = "application/vnd.cyclonedx+json"
SPDX = "application/spdx+json"
HARBOR_SBOM = "application/vnd.goharbor.harbor.sbom.v1"
SCAN_REPORT = "application/vnd.registry.scan-report.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
SBOM_TYPES = frozenset({CYCLONEDX, SPDX, HARBOR_SBOM})
IMAGE_CONFIGS = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)
PLATFORM_ANNOTATION = "dev.oci-registry.platform"
