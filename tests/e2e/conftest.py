"""End-to-end fixtures: a registry with its access log on, skopeo, and prebuilt OCI image layouts."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from tests.e2e.clients import Skopeo
from tests.imagebuild import BuiltImage, BuiltIndex, build_image, build_index
from tests.serverproc import RegistryProcess

LOG_TAIL_LINES = 60


@pytest.fixture(scope="session")
def shared_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    """Like the root ``shared_registry`` (one open registry for uniquely named content), with the access log on.

    Each request is then in the registry log, which a failing test shows (see ``pytest_runtest_makereport``).
    """
    data = tmp_path_factory.mktemp("e2e-shared") / "data"
    with RegistryProcess(data, env={"REGISTRY__LOG__ACCESS_LOG": "true"}) as proc:
        yield proc


@pytest.fixture(scope="session")
def skopeo(tmp_path_factory: pytest.TempPathFactory) -> Skopeo:
    return Skopeo(tmp_path_factory.mktemp("skopeo"))


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    """A two-layer linux/amd64 image in an OCI layout, tag ``v1`` (read-only: copy it, do not change it)."""
    return build_image(tmp_path_factory.mktemp("layout") / "image", text="hello from e2e\n", tag="v1")


@pytest.fixture(scope="session")
def multiarch(tmp_path_factory: pytest.TempPathFactory) -> BuiltIndex:
    """A linux/amd64 + linux/arm64/v8 image index in an OCI layout, tag ``v1``."""
    return build_index(tmp_path_factory.mktemp("layout") / "index", tag="v1")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, attach the tail of every registry log the test used."""
    report: pytest.TestReport = yield
    if report.failed and report.when in ("setup", "call"):
        for name, value in getattr(item, "funcargs", {}).items():
            if isinstance(value, RegistryProcess):
                tail = "\n".join(value.log_text().splitlines()[-LOG_TAIL_LINES:])
                report.sections.append((f"registry log ({name}, last {LOG_TAIL_LINES} lines)", tail))
    return report
