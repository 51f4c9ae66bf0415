"""Parse a manifest or index into what the registry needs: referenced descriptors, subject, artifactType.

The bytes are never rewritten; this module only reads them. Validation follows the OCI image-spec and the
Docker v2 schema 2 spec: JSON object, ``schemaVersion`` 2, a media type that matches ``Content-Type``,
and well-formed descriptors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from registry.oci import mediatypes as mt
from registry.oci.digest import Digest
from registry.oci.errors import MANIFEST_INVALID, RegistryError

DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: media type, digest and size, plus the optional fields we keep."""

    media_type: str
    digest: Digest
    size: int
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None

    @property
    def is_external(self) -> bool:
        """A non-distributable layer with ``urls``: the registry never receives its content."""
        return bool(self.urls) and mt.is_nondistributable(self.media_type)


@dataclass(frozen=True)
class ParsedManifest:
    """What a manifest or index says about the content it references."""

    media_type: str
    blobs: tuple[Descriptor, ...] = ()
    children: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = field(default=None)

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES


def _invalid(message: str) -> RegistryError:
    return RegistryError(MANIFEST_INVALID, message)


def _str_map(value: Any, what: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _invalid(f"{what}: annotations must be a map of strings")
    return dict(value)


def parse_descriptor(value: Any, what: str) -> Descriptor:
    """Validate one descriptor object.

    Raises:
        RegistryError: ``MANIFEST_INVALID`` naming ``what`` (or ``DIGEST_INVALID`` for a bad digest).
    """
    if not isinstance(value, dict):
        raise _invalid(f"{what}: descriptor must be an object")
    media_type = value.get("mediaType")
    digest = value.get("digest")
    size = value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{what}: mediaType is required")
    if not isinstance(digest, str):
        raise _invalid(f"{what}: digest is required")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{what}: size must be a non-negative integer")
    urls = value.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise _invalid(f"{what}: urls must be a list of strings")
    artifact_type = value.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid(f"{what}: artifactType must be a string")
    return Descriptor(
        media_type=media_type,
        digest=Digest.parse(digest),
        size=size,
        urls=tuple(urls),
        artifact_type=artifact_type,
        annotations=_str_map(value.get("annotations"), what),
    )


def _load(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise _invalid(f"manifest is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(doc, dict):
        raise _invalid("manifest must be a JSON object")
    return doc


def _media_type(doc: dict[str, Any], content_type: str | None) -> str:
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType must be a string")
    header = (content_type or "").split(";", 1)[0].strip().lower() or None
    if header in (None, "application/json", "application/octet-stream"):
        header = None
    if header and declared and header != declared:
        raise _invalid(f"Content-Type {header!r} does not match the manifest's mediaType {declared!r}")
    media_type = header or declared
    if media_type is None:
        media_type = mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST
    if media_type in (mt.DOCKER_SCHEMA1, mt.DOCKER_SCHEMA1_SIGNED):
        raise _invalid("Docker schema 1 manifests are not supported; push schema 2 or OCI")
    if media_type not in mt.MANIFEST_TYPES:
        raise _invalid(f"unsupported manifest media type {media_type!r}")
    return media_type


def parse_manifest(data: bytes, content_type: str | None) -> ParsedManifest:
    """Parse and validate manifest ``data`` sent with ``content_type``.

    Raises:
        RegistryError: ``MANIFEST_INVALID`` (or ``DIGEST_INVALID``) with a message naming the problem.
    """
    doc = _load(data)
    media_type = _media_type(doc, content_type)
    if doc.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    subject = parse_descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid("artifactType must be a string")
    annotations = _str_map(doc.get("annotations"), "manifest")
    if media_type in mt.INDEXES:
        manifests = doc.get("manifests")
        if not isinstance(manifests, list):
            raise _invalid("an index must have a manifests list")
        children = tuple(parse_descriptor(m, f"manifests[{i}]") for i, m in enumerate(manifests))
        return ParsedManifest(media_type, (), children, subject, artifact_type, annotations)
    config = parse_descriptor(doc.get("config"), "config")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise _invalid("an image manifest must have a layers list")
    blobs = (config, *(parse_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers)))
    # The referrers API reports config.mediaType when the manifest has no artifactType.
    artifact_type = artifact_type or config.media_type
    return ParsedManifest(media_type, blobs, (), subject, artifact_type, annotations)
