"""The supply-chain extension: SBOMs on push and signed attestations of everything the registry generates.

Two subscribers of ``manifest.pushed``. ``sbom`` generates SBOMs for pushed images (never for referrers or
the registry's own artifacts) and indexes SBOM referrers pushed by other tools; ``attest`` signs every
registry-generated SBOM and scan report. A failure is logged and the event is not retried (a broken image
must not stall the outbox); ``registry sbom generate`` redoes an image on demand.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from config.settings import SupplyChainSettings
from registry.events import Subscriber
from registry.extensions.attest.attester import Attester
from registry.extensions.attest.keys import AttestationKeys
from registry.extensions.publish import load_marker_key
from registry.extensions.sbom.generator import SbomGenerator, is_generated, is_image
from registry.extensions.sbom.index import SbomIndex
from registry.extensions.sbom.types import SBOM_TYPES
from registry.oci import errors as e
from registry.oci.digest import Digest
from registry.oci.manifest import parse_manifest
from registry.storage.records import Event
from registry.storage.service import RegistryService

log = logging.getLogger("registry.supplychain")
Background = Callable[..., Any]
INDEX_NAME = "supply-chain.db"


def attestation_keys(root: Path, settings: SupplyChainSettings) -> AttestationKeys:
    return AttestationKeys(Path(settings.attestation_key_dir) if settings.attestation_key_dir else root / "attestation")


def build_generator(
    service: RegistryService, blob_path: Callable[[Digest], Path], root: Path, settings: SupplyChainSettings
) -> SbomGenerator:
    load_marker_key(attestation_keys(root, settings).directory / "marker.key")
    return SbomGenerator(service, blob_path, SbomIndex(root / INDEX_NAME), settings.sbom_worker_memory_mb)


@dataclass
class SbomSubscriber:
    generator: SbomGenerator
    on_push: bool
    name: str = "supplychain.sbom"
    poll_interval: float = 30.0
    _wake: trio.Event = field(default_factory=trio.Event)

    async def handle(self, event: Event) -> None:
        if event.kind != "manifest.pushed" or event.digest is None:
            return
        try:
            record = await self.generator.service.get_manifest(event.repo, event.digest)
        except e.RegistryError:
            return  # deleted since
        try:
            parsed = parse_manifest(record.content, record.media_type)
            if record.subject is not None and parsed.artifact_type in SBOM_TYPES:
                if not is_generated(record):  # the registry's own are indexed when generated
                    await self.generator.index_pushed(event.repo, record)
            elif self.on_push and (parsed.is_index or is_image(record, parsed.blobs[1:], parsed.artifact_type)):
                # Queued, not generated here: a large image must not hold up the other subscribers.
                await self.generator.index.enqueue(event.repo, event.digest)
                self._wake.set()
        except Exception:
            log.exception("sbom for %s@%s failed", event.repo, event.digest)

    async def run_queue(self) -> None:
        while (job := await self.generator.index.next_job()) is not None:
            job_id, repo, digest = job
            try:
                await self.generator.generate(repo, digest)
            except e.RegistryError:
                pass  # deleted since it was queued
            except Exception:
                log.exception("sbom for %s@%s failed", repo, digest)
            await self.generator.index.done(job_id)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled: generate the queued SBOMs one at a time, oldest first. A job stays queued
        until it finished or failed (a crash in between redoes it after a restart)."""
        task_status.started()
        while True:
            self._wake = trio.Event()
            try:
                await self.run_queue()
            except Exception:
                log.exception("sbom queue failed; retrying in %.0fs", self.poll_interval)
            with trio.move_on_after(self.poll_interval):
                await self._wake.wait()


@dataclass
class AttestSubscriber:
    attester: Attester
    name: str = "supplychain.attest"

    async def handle(self, event: Event) -> None:
        if event.kind != "manifest.pushed" or event.digest is None:
            return
        try:
            record = await self.attester.service.get_manifest(event.repo, event.digest)
        except e.RegistryError:
            return
        if not Attester.wants(record):
            return
        try:
            await self.attester.attest(event.repo, record)
        except Exception:
            log.exception("attestation of %s@%s failed", event.repo, event.digest)


@dataclass
class SupplyChain:
    """The :class:`registry.extensions.Extension` the composition root registers."""

    sbom: SbomSubscriber
    attest: AttestSubscriber | None
    keys: AttestationKeys
    name: str = "supplychain"

    def subscribers(self) -> Sequence[Subscriber]:
        return [self.sbom] if self.attest is None else [self.sbom, self.attest]

    def background(self) -> Sequence[Background]:
        """Loops the server runs beside the outbox relay (``nursery.start(loop)``)."""
        return [self.sbom.serve]


def build_supply_chain(
    service: RegistryService, blob_path: Callable[[Digest], Path], root: Path, settings: SupplyChainSettings
) -> SupplyChain:
    generator = build_generator(service, blob_path, root, settings)
    keys = attestation_keys(root, settings)
    attest = AttestSubscriber(Attester(service, keys)) if settings.attest else None
    return SupplyChain(SbomSubscriber(generator, settings.sbom_on_push), attest, keys)
