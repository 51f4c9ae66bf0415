"""Shared fixtures: real registry processes on 127.0.0.1 with a fresh data directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serverproc import RegistryProcess


@pytest.fixture(scope="session")
def shared_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    """One open (``--auth none``) registry for tests that only add uniquely named content."""
    with RegistryProcess(tmp_path_factory.mktemp("shared") / "data") as proc:
        yield proc


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    """A registry of this test's own (fresh data directory)."""
    with RegistryProcess(tmp_path / "data") as proc:
        yield proc
