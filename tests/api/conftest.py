from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.serverproc import RegistryProcess


@pytest.fixture
def client(shared_registry: RegistryProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_registry.url, timeout=30) as c:
        yield c
