"""Verify an image's attestations: every signature against the published keys, and the subject digest."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from registry.extensions.attest.attester import PREDICATE_ANNOTATION, cosign_tag
from registry.extensions.attest.dsse import VerificationError, verify_envelope
from registry.extensions.attest.keys import AttestationKeys
from registry.extensions.sbom.types import IN_TOTO
from registry.oci import errors as e
from registry.oci.digest import Digest
from registry.oci.manifest import parse_manifest
from registry.storage.service import RegistryService


@dataclass
class Check:
    source: str  # "referrer <digest>" or "cosign <tag>"
    predicate_type: str
    ok: bool
    detail: str


@dataclass
class Report:
    image: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, object]:
        return {"image": self.image, "ok": self.ok, "checks": [c.__dict__ for c in self.checks]}


async def _blob(service: RegistryService, digest: Digest, size: int) -> bytes:
    return b"".join([c async for c in service.read_blob(digest, 0, size - 1)]) if size else b""


def _check(source: str, envelope: bytes, predicate_type: str, image: Digest, keys: AttestationKeys) -> Check:
    try:
        verified = verify_envelope(envelope, keys.public_keys())
    except VerificationError as exc:
        return Check(source, predicate_type, False, str(exc))
    statement = verified.statement
    subjects = statement.get("subject") or []
    digests = [s.get("digest", {}).get(image.algorithm) for s in subjects if isinstance(s, dict)]
    if image.encoded not in digests:
        return Check(source, predicate_type, False, f"statement subject {digests} is not {image}")
    if predicate_type and statement.get("predicateType") != predicate_type:
        return Check(source, predicate_type, False, "predicateType differs from the layer annotation")
    return Check(source, str(statement.get("predicateType")), True, f"signed by key {verified.keyid[:16]}")


async def verify_image(service: RegistryService, repo: str, reference: str, keys: AttestationKeys) -> Report:
    """Check the attestations of ``repo:reference`` (every platform of an index)."""
    record = await service.get_manifest(repo, reference)
    parsed = parse_manifest(record.content, record.media_type)
    images = [c.digest for c in parsed.children] if parsed.is_index else [record.digest]
    report = Report(f"{repo}@{record.digest}")
    for image in images:
        for referrer in await service.referrers(repo, image, IN_TOTO):
            manifest = await service.get_manifest(repo, str(referrer.digest))
            for layer in parse_manifest(manifest.content, manifest.media_type).blobs[1:]:
                predicate = (layer.annotations or {}).get(PREDICATE_ANNOTATION, "")
                data = await _blob(service, layer.digest, layer.size)
                report.checks.append(_check(f"referrer {referrer.digest}", data, predicate, image, keys))
        try:
            att = await service.get_manifest(repo, cosign_tag(image))
        except e.RegistryError:
            continue
        for layer in parse_manifest(att.content, att.media_type).blobs[1:]:
            predicate = (layer.annotations or {}).get(PREDICATE_ANNOTATION, "")
            data = await _blob(service, layer.digest, layer.size)
            report.checks.append(_check(f"cosign {cosign_tag(image)}", data, predicate, image, keys))
    return report


def dumps(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2)
