"""Optional features (SBOM, scanning, webhooks) plug in here, never the other way round.

An extension receives domain events as a :class:`registry.events.Subscriber`, which the composition root
(``registry.app``) registers with the outbox relay. Core packages (``registry.api``, ``registry.storage``,
``registry.oci``, ``registry.events``) must not import this package; an import-linter contract in the
test suite enforces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from registry.events import Subscriber


class Extension(Protocol):
    """An optional feature: a name and the event subscribers it contributes."""

    name: str

    def subscribers(self) -> Sequence[Subscriber]: ...
