"""An IAM-enabled registry with namespaces, role-bound service accounts and content, for the access tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.adminapi import AdminApi
from tests.api.conftest import CHEAP_ARGON2
from tests.api.ocihelpers import push_blob, push_image
from tests.serverproc import RegistryProcess

OWN, OTHER, PUBLIC = "team-a", "team-b", "pub"
ROLES = ("puller", "reader", "pusher", "writer", "maintainer", "none")


@dataclass
class World:
    proc: RegistryProcess
    accounts: dict[str, tuple[str, str]] = field(default_factory=dict)  # role → (username, password)
    blobs: dict[str, str] = field(default_factory=dict)  # namespace → digest of a blob in <ns>/app
    admin: tuple[str, str] = ("", "")

    @property
    def url(self) -> str:
        return self.proc.url

    @property
    def data(self) -> Path:
        return self.proc.data


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    env = {**CHEAP_ARGON2, "REGISTRY__AUTH__FAILED_LOGIN_LIMIT": "1000"}
    proc = RegistryProcess(tmp_path_factory.mktemp("authz") / "data", "--auth", "token", env=env)
    with proc, AdminApi(proc) as api:
        w = World(proc)
        w.admin = api.creds
        api.namespace(OWN)
        api.namespace(OTHER)
        api.namespace(PUBLIC, public=True)
        for role in ROLES:
            w.accounts[role] = api.service_account(f"sa-{role}")
            if role != "none":
                api.grant(role, OWN, f"sa-{role}")
        with httpx.Client(base_url=proc.url, auth=w.admin, timeout=30) as client:
            for ns in (OWN, OTHER, PUBLIC):
                push_image(client, f"{ns}/app", "v1")
                w.blobs[ns] = push_blob(client, f"{ns}/app", f"blob of {ns}".encode())
        yield w
