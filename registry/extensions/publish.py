"""Publish an artifact the registry generated (an SBOM, a scan report, an attestation) as an OCI 1.1 referrer."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Protocol

from registry.oci import mediatypes as mt
from registry.oci.digest import Digest
from registry.storage.service import RegistryService

log = logging.getLogger("registry.publish")
EMPTY_CONFIG = b"{}"
# Every artifact published here carries this annotation: subscribers use it to tell the registry's own
# artifacts from pushed ones (no SBOM of an SBOM; only the registry's own artifacts are attested). Its value
# is "oci-registry;<HMAC-SHA256>" over subject, artifactType and layer digests with a key only the registry
# holds, so a client cannot push an artifact that the registry then mistakes for its own and signs.
GENERATED_BY = "dev.oci-registry.generated-by"
GENERATOR = "oci-registry"
_marker_key: bytes | None = None


def load_marker_key(path: Path) -> None:
    """Load (creating it, mode 0600) the process-wide key of the generated-by marker."""
    global _marker_key
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    _marker_key = bytes.fromhex(path.read_text().strip())


def marker(subject: str | None, artifact_type: str | None, layer_digests: Sequence[str]) -> str:
    if _marker_key is None:
        # A process that never loaded the key (a tool outside the composition root): the artifact is still
        # recognisably the registry's (no SBOM of it), but it will not be attested.
        log.warning("generated-by marker key not loaded; the artifact will not be attested")
        return f"{GENERATOR};unsigned"
    message = "\n".join([subject or "", artifact_type or "", *layer_digests]).encode()
    return f"{GENERATOR};{hmac.new(_marker_key, message, hashlib.sha256).hexdigest()}"


def has_valid_marker(
    annotations: dict[str, str], subject: str | None, artifact_type: str | None, layer_digests: Sequence[str]
) -> bool:
    """True when the manifest's generated-by marker was made by this registry."""
    value = annotations.get(GENERATED_BY)
    if value is None or _marker_key is None:
        return False
    return hmac.compare_digest(value, marker(subject, artifact_type, layer_digests))


class DescriptorLike(Protocol):
    @property
    def media_type(self) -> str: ...
    @property
    def digest(self) -> Digest: ...
    @property
    def size(self) -> int: ...


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def put_blob(service: RegistryService, repository: str, data: bytes) -> Digest:
    """Store ``data`` as a blob linked into ``repository`` (a no-op re-link when it exists)."""
    digest = Digest.of(data, "sha256")
    await service.push_monolithic(repository, digest, _once(data), len(data))
    return digest


def descriptor(media_type: str, digest: Digest, size: int, **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": str(digest), "size": size, **extra}


async def put_artifact_manifest(
    service: RegistryService,
    repository: str,
    artifact_type: str | None,
    layers: list[tuple[str, bytes, dict[str, str] | None]],
    annotations: dict[str, str],
    subject: DescriptorLike | None,
    tag: str | None = None,
    config: tuple[str, bytes] = (mt.OCI_EMPTY, EMPTY_CONFIG),
) -> Digest:
    """Store the blobs and an OCI image manifest referencing them; returns the manifest digest."""
    config_digest = await put_blob(service, repository, config[1])
    layer_descs = []
    for media_type, data, layer_annotations in layers:
        digest = await put_blob(service, repository, data)
        extra: dict[str, object] = {"annotations": layer_annotations} if layer_annotations else {}
        layer_descs.append(descriptor(media_type, digest, len(data), **extra))
    doc: dict[str, object] = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST}
    if artifact_type:
        doc["artifactType"] = artifact_type
    doc["config"] = descriptor(config[0], config_digest, len(config[1]))
    doc["layers"] = layer_descs
    if subject is not None:
        doc["subject"] = descriptor(subject.media_type, subject.digest, subject.size)
    digests = [str(d["digest"]) for d in layer_descs]
    generated = marker(None if subject is None else str(subject.digest), artifact_type, digests)
    doc["annotations"] = {**annotations, GENERATED_BY: generated}
    data = json.dumps(doc, separators=(",", ":")).encode()
    pushed = await service.put_manifest(repository, tag or str(Digest.of(data, "sha256")), mt.OCI_MANIFEST, data)
    return pushed.digest


async def attach_referrer(
    service: RegistryService,
    repository: str,
    subject: DescriptorLike,
    artifact_type: str,
    payload: bytes,
    payload_media_type: str,
    annotations: dict[str, str],
) -> str:
    """Push ``payload`` as a referrer of ``subject``: empty config, one layer; returns the manifest digest."""
    digest = await put_artifact_manifest(
        service, repository, artifact_type, [(payload_media_type, payload, None)], annotations, subject
    )
    return str(digest)
