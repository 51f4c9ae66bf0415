"""Generate the SBOMs of an image (one per platform) in a worker process and attach them as referrers."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from registry.extensions.publish import GENERATED_BY, attach_referrer
from registry.extensions.sbom.index import SbomIndex, SbomRow
from registry.extensions.sbom.types import CYCLONEDX, IMAGE_CONFIGS, PLATFORM_ANNOTATION, SBOM_TYPES, SPDX
from registry.oci import mediatypes as mt
from registry.oci.digest import Digest
from registry.oci.manifest import Descriptor, parse_manifest
from registry.storage.records import ManifestRecord
from registry.storage.service import RegistryService

log = logging.getLogger("registry.sbom")
WORKER = [sys.executable, "-m", "registry.extensions.sbom.worker"]


class SbomError(Exception):
    """The image cannot be scanned (a worker failure, an unsupported layer)."""


@dataclass(frozen=True)
class Generated:
    subject: str
    platform: str
    cyclonedx: str
    spdx: str
    components: int


LAYER_PREFIXES = ("application/vnd.oci.image.layer.", "application/vnd.docker.image.rootfs.")


def is_image(record: ManifestRecord, layers: tuple[Descriptor, ...], artifact_type: str | None) -> bool:
    """A container image to describe: not a referrer, not one of the registry's own artifacts (such as a
    cosign ``.att`` image), an image config and only filesystem layers."""
    return (
        record.subject is None
        and artifact_type in IMAGE_CONFIGS
        and not is_generated(record)
        and all(layer.media_type.startswith(LAYER_PREFIXES) for layer in layers)
    )


def is_generated(record: ManifestRecord) -> bool:
    annotations = json.loads(record.annotations_json) if record.annotations_json else {}
    return GENERATED_BY in annotations


class SbomGenerator:
    def __init__(
        self,
        service: RegistryService,
        blob_path: Callable[[Digest], Path],
        index: SbomIndex,
        worker_memory_mb: int = 1024,
        workers: int = 1,
    ) -> None:
        self.service = service
        self.blob_path = blob_path
        self.index = index
        self.worker_memory_mb = worker_memory_mb
        self._limit = trio.Semaphore(workers)

    async def generate(self, repo: str, reference: str, force: bool = False) -> list[Generated]:
        """SBOMs for ``repo:reference`` (an image or every platform of an index). Images that already have
        registry-generated SBOMs are skipped unless ``force``."""
        record = await self.service.get_manifest(repo, reference)
        parsed = parse_manifest(record.content, record.media_type)
        if parsed.is_index:
            out: list[Generated] = []
            for child in parsed.children:
                if child.media_type not in mt.IMAGE_MANIFESTS or _is_attestation(child):
                    continue
                out += await self.generate(repo, str(child.digest), force)
            return out
        if not is_image(record, parsed.blobs[1:], parsed.artifact_type):
            return []
        if not force and await self._has_sboms(repo, record.digest):
            return []
        config = await self._read_blob(parsed.blobs[0].digest)
        platform = _platform(config)
        describe = {"repo": repo, "digest": str(record.digest), "platform": platform}
        result = await self.scan([self.blob_path(d.digest) for d in parsed.blobs[1:]], describe)
        for note in result.get("notes", []):
            log.warning("sbom %s@%s: %s", repo, record.digest, note)
        subject = Descriptor(record.media_type, record.digest, record.size)
        annotations = {"org.opencontainers.image.created": _now(), PLATFORM_ANNOTATION: platform}
        try:
            cdx, spdx = str(result["cyclonedx"]).encode(), str(result["spdx"]).encode()
        except KeyError as exc:
            raise SbomError(f"sbom worker returned no {exc.args[0]} document") from None
        cdx_digest = await attach_referrer(self.service, repo, subject, CYCLONEDX, cdx, CYCLONEDX, annotations)
        spdx_digest = await attach_referrer(self.service, repo, subject, SPDX, spdx, SPDX, annotations)
        count = len(json.loads(cdx).get("components", []))
        for digest, artifact_type, fmt in ((cdx_digest, CYCLONEDX, "cyclonedx"), (spdx_digest, SPDX, "spdx")):
            row = SbomRow(repo, str(record.digest), digest, artifact_type, fmt, "registry", platform, count, 0)
            await self.index.add(row)
        log.info("sbom %s@%s (%s): %d components", repo, record.digest, platform, count)
        return [Generated(str(record.digest), platform, cdx_digest, spdx_digest, count)]

    async def _has_sboms(self, repo: str, digest: Digest) -> bool:
        for referrer in await self.service.referrers(repo, digest, CYCLONEDX):
            annotations = json.loads(referrer.annotations_json or "{}")
            if GENERATED_BY in annotations:
                return True
        return False

    async def _read_blob(self, digest: Digest) -> bytes:
        return await trio.to_thread.run_sync(self.blob_path(digest).read_bytes)

    async def scan(self, layers: list[Path], describe: dict[str, str] | None = None) -> dict[str, Any]:
        """Run the worker process over ``layers`` (lowest first); with ``describe`` (repo, digest, platform)
        it also builds the CycloneDX and SPDX documents."""
        job: dict[str, Any] = {"layers": [str(p) for p in layers], "memory_mb": self.worker_memory_mb}
        if describe is not None:
            job["describe"] = describe
        request = json.dumps(job).encode()
        async with self._limit:
            proc = await trio.run_process(WORKER, stdin=request, capture_stdout=True, capture_stderr=True, check=False)
        try:
            result: dict[str, Any] = json.loads(proc.stdout or b"{}")
        except ValueError:
            result = {}
        if proc.returncode != 0 or "error" in result:
            detail = result.get("error") or proc.stderr.decode("utf-8", "replace")[-500:]
            raise SbomError(f"sbom worker failed ({proc.returncode}): {detail}")
        return result

    async def index_pushed(self, repo: str, record: ManifestRecord) -> SbomRow | None:
        """Index an SBOM referrer pushed by another tool (CycloneDX, SPDX or Harbor's SBOM artifact)."""
        parsed = parse_manifest(record.content, record.media_type)
        if record.subject is None or parsed.artifact_type not in SBOM_TYPES:
            return None
        layers = parsed.blobs[1:]
        fmt, components = "unknown", 0
        for layer in layers:
            kind = "cyclonedx" if "cyclonedx" in layer.media_type else "spdx" if "spdx" in layer.media_type else ""
            if not kind or layer.size > 64 * 1024 * 1024:
                continue
            try:
                doc = json.loads(await self._read_blob(layer.digest))
            except (OSError, ValueError):
                continue
            fmt = kind
            components = len(doc.get("components" if kind == "cyclonedx" else "packages", []) or [])
            break
        if fmt == "unknown" and parsed.artifact_type != mt.OCI_EMPTY:
            fmt = {CYCLONEDX: "cyclonedx", SPDX: "spdx"}.get(parsed.artifact_type or "", "unknown")
        source = "registry" if is_generated(record) else "pushed"
        annotations = parsed.annotations or {}
        row = SbomRow(
            repo,
            str(record.subject),
            str(record.digest),
            parsed.artifact_type or "",
            fmt,
            source,
            annotations.get(PLATFORM_ANNOTATION, ""),
            components,
            0,
        )
        await self.index.add(row)
        return row


def _platform(config: bytes) -> str:
    try:
        doc = json.loads(config)
    except ValueError:
        return ""
    if not isinstance(doc, dict):
        return ""
    parts = [str(doc.get("os", "")), str(doc.get("architecture", ""))]
    if doc.get("variant"):
        parts.append(str(doc["variant"]))
    return "/".join(p for p in parts if p)


def _is_attestation(child: Descriptor) -> bool:
    """buildx stores its provenance as an ``unknown/unknown`` index entry: not an image to describe."""
    return (child.annotations or {}).get("vnd.docker.reference.type") == "attestation-manifest"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
