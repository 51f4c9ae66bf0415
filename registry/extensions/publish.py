"""Publish an artifact the registry generated (SBOM, scan report, attestation) as an OCI 1.1 referrer.

The artifact is an image manifest with ``artifactType``, the empty config descriptor
(``application/vnd.oci.empty.v1+json``, content ``{}``), one layer holding the payload and ``subject`` pointing at
the described manifest. Blobs and manifest go through :class:`RegistryService`, so the push is recorded in the
outbox like any client push.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Protocol

from registry.oci.digest import Digest
from registry.storage.service import RegistryService

EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONTENT = b"{}"
IMAGE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class DescriptorLike(Protocol):
    @property
    def media_type(self) -> str: ...

    @property
    def digest(self) -> Digest | str: ...

    @property
    def size(self) -> int: ...


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _push_blob(service: RegistryService, repository: str, data: bytes) -> Digest:
    digest = Digest.of(data)
    await service.push_monolithic(repository, digest, _once(data), len(data))
    return digest


async def attach_referrer(
    service: RegistryService,
    repository: str,
    subject: DescriptorLike,
    artifact_type: str,
    payload: bytes,
    payload_media_type: str,
    annotations: dict[str, str],
) -> str:
    """Store ``payload`` as a referrer of ``subject`` in ``repository``; returns the manifest digest.

    Raises RegistryError as the service does (e.g. ``MANIFEST_INVALID``). Pushing the same payload with the
    same annotations twice yields the same digest (the manifest bytes are deterministic)."""
    config = await _push_blob(service, repository, EMPTY_CONTENT)
    layer = await _push_blob(service, repository, payload)
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": IMAGE_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": str(config), "size": len(EMPTY_CONTENT)},
        "layers": [{"mediaType": payload_media_type, "digest": str(layer), "size": len(payload)}],
        "subject": {"mediaType": subject.media_type, "digest": str(subject.digest), "size": subject.size},
    }
    if annotations:
        manifest["annotations"] = dict(sorted(annotations.items()))
    data = json.dumps(manifest, separators=(",", ":")).encode()
    digest = Digest.of(data)
    await service.put_manifest(repository, str(digest), IMAGE_MANIFEST, data)
    return str(digest)
