"""Values passed between the service and the metadata store."""

from __future__ import annotations

from dataclasses import dataclass

from registry.oci.digest import Digest


@dataclass(frozen=True)
class ManifestRecord:
    """A stored manifest: the exact bytes as pushed, with what was parsed out of them."""

    digest: Digest
    media_type: str
    content: bytes
    artifact_type: str | None = None
    subject: Digest | None = None
    annotations_json: str | None = None

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class ManifestRef:
    """Something a manifest points at: a blob (config/layer), a child manifest, or an external layer."""

    digest: Digest
    kind: str  # "blob" | "child" | "external"


@dataclass(frozen=True)
class Referrer:
    """One entry of a referrers response."""

    digest: Digest
    media_type: str
    size: int
    artifact_type: str | None
    annotations_json: str | None


@dataclass(frozen=True)
class UploadSession:
    """A resumable upload: ``size`` bytes acknowledged so far."""

    id: str
    repo: str
    size: int
    created: float
    updated: float


@dataclass(frozen=True)
class Event:
    """A domain event from the outbox: delivered at least once to every subscriber, in ``id`` order."""

    id: int
    at: float
    kind: str
    repo: str
    digest: str | None
    tag: str | None
    data: str | None


@dataclass(frozen=True)
class BlobRow:
    digest: Digest
    size: int
