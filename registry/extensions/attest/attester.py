"""Sign what the registry generated: an in-toto Statement per SBOM or scan report, in a DSSE envelope,
stored as a referrer of the image and in the image's cosign attestation tag ``sha256-<hex>.att``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import trio

from registry.extensions.attest.dsse import sign_envelope, statement
from registry.extensions.attest.keys import AttestationKeys
from registry.extensions.publish import has_valid_marker, put_artifact_manifest
from registry.extensions.sbom.types import CYCLONEDX, DSSE_ENVELOPE, IN_TOTO, SCAN_REPORT, SPDX
from registry.oci import errors as e
from registry.oci import mediatypes as mt
from registry.oci.digest import Digest
from registry.oci.manifest import Descriptor, parse_manifest
from registry.storage.records import ManifestRecord
from registry.storage.service import RegistryService

log = logging.getLogger("registry.attest")

# Predicate types as cosign maps ``--type cyclonedx`` / ``--type spdxjson``; the scan report's is ours.
PREDICATE_TYPES = {
    CYCLONEDX: "https://cyclonedx.org/bom",
    SPDX: "https://spdx.dev/Document",
    SCAN_REPORT: "https://oci-registry.dev/attestations/scan-report/v1",
}
PREDICATE_ANNOTATION = "predicateType"  # cosign's layer annotation
ATTESTS_ANNOTATION = "dev.oci-registry.attests"  # the artifact (SBOM, scan report) this attestation signs
MAX_PREDICATE_BYTES = 64 * 1024 * 1024


def cosign_tag(digest: Digest) -> str:
    return f"{digest.algorithm}-{digest.encoded}.att"


@dataclass(frozen=True)
class Attestation:
    subject: str
    predicate_type: str
    referrer: str
    cosign_manifest: str


class Attester:
    def __init__(self, service: RegistryService, keys: AttestationKeys) -> None:
        self.service = service
        self.keys = keys
        self._lock = trio.Lock()

    @staticmethod
    def wants(record: ManifestRecord) -> bool:
        """A registry-generated SBOM or scan report referrer (its generated-by marker verifies)."""
        if record.subject is None or record.artifact_type not in PREDICATE_TYPES:
            return False
        parsed = parse_manifest(record.content, record.media_type)
        layers = [str(d.digest) for d in parsed.blobs[1:]]
        return has_valid_marker(parsed.annotations or {}, str(record.subject), record.artifact_type, layers)

    async def _blob(self, digest: Digest, size: int) -> bytes:
        chunks = [c async for c in self.service.read_blob(digest, 0, size - 1)] if size else []
        return b"".join(chunks)

    async def attest(self, repo: str, record: ManifestRecord) -> Attestation:
        assert record.subject is not None and record.artifact_type is not None
        predicate_type = PREDICATE_TYPES[record.artifact_type]
        parsed = parse_manifest(record.content, record.media_type)
        layers = parsed.blobs[1:]
        if len(layers) != 1 or layers[0].size > MAX_PREDICATE_BYTES:
            raise ValueError(f"{record.digest}: expected one layer of at most {MAX_PREDICATE_BYTES} bytes")
        predicate = json.loads(await self._blob(layers[0].digest, layers[0].size))
        image = await self.service.get_manifest(repo, str(record.subject))
        payload = statement(repo, str(image.digest), predicate_type, predicate)
        signer = await trio.to_thread.run_sync(self.keys.signer)
        envelope = sign_envelope(payload, signer)
        layer_annotations = {PREDICATE_ANNOTATION: predicate_type}
        subject = Descriptor(image.media_type, image.digest, image.size)
        annotations = {
            PREDICATE_ANNOTATION: predicate_type,
            ATTESTS_ANNOTATION: str(record.digest),
            "dev.oci-registry.keyid": signer.keyid,
        }
        async with self._lock:
            referrer = await put_artifact_manifest(
                self.service, repo, IN_TOTO, [(DSSE_ENVELOPE, envelope, layer_annotations)], annotations, subject
            )
            cosign = await self._add_to_cosign_tag(repo, image.digest, envelope, predicate_type)
        log.info("attested %s of %s@%s (%s)", record.digest, repo, image.digest, predicate_type)
        return Attestation(str(image.digest), predicate_type, str(referrer), str(cosign))

    async def _add_to_cosign_tag(self, repo: str, image: Digest, envelope: bytes, predicate_type: str) -> Digest:
        """cosign's layout: an image manifest tagged ``sha256-<hex>.att``, one DSSE layer per attestation
        (annotation ``predicateType``). A new attestation replaces the one of the same predicate type."""
        tag = cosign_tag(image)
        layers: list[tuple[str, bytes, dict[str, str] | None]] = []
        try:
            old = await self.service.get_manifest(repo, tag)
        except e.RegistryError:
            old = None
        if old is not None:
            for layer in parse_manifest(old.content, old.media_type).blobs[1:]:
                if (layer.annotations or {}).get(PREDICATE_ANNOTATION) != predicate_type:
                    layers.append((layer.media_type, await self._blob(layer.digest, layer.size), layer.annotations))
        layers.append((DSSE_ENVELOPE, envelope, {PREDICATE_ANNOTATION: predicate_type}))
        # go-containerregistry's config for such an image: the layers are their own diff ids.
        config = {
            "architecture": "",
            "os": "",
            "created": "0001-01-01T00:00:00Z",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [str(Digest.of(data, "sha256")) for _, data, _ in layers]},
        }
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        return await put_artifact_manifest(
            self.service, repo, None, layers, {}, None, tag=tag, config=(mt.OCI_CONFIG, config_bytes)
        )
