"""API tests run twice: against an open registry (``--auth none``) and with IAM on, through the token flow
with a service account bound to a role with pull, push, list and delete on the test namespaces (what the
conformance suite does with OCI_USERNAME / OCI_PASSWORD)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.adminapi import AdminApi
from tests.serverproc import BIN, RegistryProcess
from tests.tokenauth import DockerTokenAuth

NAMESPACES = ("conformance", "catalog")


def admin(proc: RegistryProcess, *args: str) -> dict[str, object]:
    """``registry admin ARGS`` as a process of its own (about 1.5 s); its JSON output. For tests whose subject
    is the CLI; plain set-up goes through the management API (``tests/adminapi.py``)."""
    out = subprocess.run(
        [BIN / "registry", "admin", "--data", str(proc.data), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=proc.env_for_cli(),
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RegistryProcess, str, str]]:
    proc = RegistryProcess(tmp_path_factory.mktemp("auth") / "data", "--auth", "token", env=CHEAP_ARGON2)
    with proc, AdminApi(proc) as api:
        api.role("conformance", "pull", "push", "list", "delete")
        username, password = api.service_account("conformance-bot")
        for ns in NAMESPACES:
            api.namespace(ns)
            api.grant("conformance", ns, "conformance-bot")
        yield proc, username, password


CHEAP_ARGON2 = {"REGISTRY__AUTH__ARGON2_TIME_COST": "1", "REGISTRY__AUTH__ARGON2_MEMORY_KIB": "256"}


@pytest.fixture(params=["open", "auth"])
def client(request: pytest.FixtureRequest, shared_registry: RegistryProcess) -> Iterator[httpx.Client]:
    if request.param == "open":
        with httpx.Client(base_url=shared_registry.url, timeout=30) as c:
            yield c
        return
    proc, username, password = request.getfixturevalue("auth_registry")
    with httpx.Client(base_url=proc.url, timeout=30, auth=DockerTokenAuth(username, password)) as c:
        yield c
