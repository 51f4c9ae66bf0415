"""The scanning extension as the composition root sees it: one outbox subscriber (scan on SBOM push)."""

from __future__ import annotations

from collections.abc import Sequence

from registry.events import Subscriber
from registry.extensions.scan.images import ImageScanner, ScanSubscriber
from registry.storage.service import RegistryService
from registry.storage.sqlite_db import SqliteDatabase


class ScanExtension:
    """Implements :class:`registry.extensions.Extension`."""

    name = "scan"

    def __init__(self, service: RegistryService, db: SqliteDatabase) -> None:
        self.scanner = ImageScanner(service, db)

    def subscribers(self) -> Sequence[Subscriber]:
        return [ScanSubscriber(self.scanner)]
