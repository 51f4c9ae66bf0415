"""The scanning extension as the composition root sees it: an outbox subscriber (scan on SBOM push) and the
pull gate of the per-namespace scan policy."""

from __future__ import annotations

from collections.abc import Sequence

from registry.events import Subscriber
from registry.extensions.scan.images import ImageScanner, ScanSubscriber
from registry.extensions.scan.policy import ScanPolicyGate
from registry.storage.service import RegistryService
from registry.storage.sqlite_db import SqliteDatabase


class ScanExtension:
    """Implements :class:`registry.extensions.Extension`."""

    name = "scan"

    def __init__(self, service: RegistryService, db: SqliteDatabase) -> None:
        self.scanner = ImageScanner(service, db)

    def subscribers(self) -> Sequence[Subscriber]:
        return [ScanSubscriber(self.scanner)]

    def pull_gate(self) -> ScanPolicyGate:
        """The per-namespace scan policy, for ``ApiContext.pull_gate``."""
        return ScanPolicyGate(self.scanner)
