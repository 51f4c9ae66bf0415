"""A primary with auth on (``--auth token``) for the edge's auth tests, and helpers to push to it and to get
tokens from it. Import the ``auth_primary`` fixture into a test module to use it.

Accounts: ``builder`` may pull and push ``team-a`` and ``team-b``; ``reader`` may pull ``team-a`` only;
``edge-node`` (an edge's identity) may pull ``team-a`` only. ``public`` is a public namespace.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.edge.ocipush import sha256
from tests.imagebuild import OCI_MANIFEST, BuiltImage
from tests.serverproc import BIN, RegistryProcess
from tests.tokenauth import DockerTokenAuth

CHEAP_ARGON2 = {"REGISTRY__AUTH__ARGON2_TIME_COST": "1", "REGISTRY__AUTH__ARGON2_MEMORY_KIB": "256"}
ACCESS_LOG = {"REGISTRY__LOG__ACCESS_LOG": "true"}


def admin(proc: RegistryProcess, *args: str) -> str:
    out = subprocess.run(
        [BIN / "registry", "admin", "--data", str(proc.data), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=proc.env_for_cli(),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@dataclass(frozen=True)
class Account:
    username: str
    password: str


@dataclass
class AuthPrimary:
    proc: RegistryProcess
    builder: Account
    reader: Account
    edge_node: Account

    @property
    def url(self) -> str:
        return self.proc.url

    def token(self, account: Account | None, scope: str) -> str:
        """A token from the primary's token service (anonymous when ``account`` is None)."""
        auth = httpx.BasicAuth(account.username, account.password) if account else None
        response = httpx.get(f"{self.url}/token", params={"service": "registry", "scope": scope}, auth=auth, timeout=30)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def push_image(self, repo: str, image: BuiltImage, tag: str) -> None:
        with httpx.Client(
            base_url=self.url, timeout=60, auth=DockerTokenAuth(self.builder.username, self.builder.password)
        ) as client:
            for blob in [image.config, *image.layers]:
                response = client.post(f"/v2/{repo}/blobs/uploads/?digest={sha256(blob)}", content=blob)
                assert response.status_code == 201, response.text
            response = client.put(
                f"/v2/{repo}/manifests/{tag}", content=image.manifest, headers={"Content-Type": OCI_MANIFEST}
            )
            assert response.status_code == 201, response.text


def _account(proc: RegistryProcess, name: str) -> Account:
    created = json.loads(admin(proc, "service-account", "create", name))
    return Account(str(created["username"]), str(created["password"]))


@pytest.fixture(scope="module")
def auth_primary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthPrimary]:
    data = tmp_path_factory.mktemp("auth-primary") / "data"
    with RegistryProcess(data, "--auth", "token", env={**CHEAP_ARGON2, **ACCESS_LOG}) as proc:
        admin(proc, "role", "create", "t-pull", "--permissions", "pull")
        admin(proc, "role", "create", "t-push", "--permissions", "pull,push")
        for ns in ("team-a", "team-b"):
            admin(proc, "namespace", "create", ns)
        admin(proc, "namespace", "create", "public", "--public")
        builder, reader, edge_node = (_account(proc, n) for n in ("builder", "reader", "edge-node"))
        for ns in ("team-a", "team-b", "public"):
            admin(proc, "grant", "t-push", "--namespace", ns, "--service-account", "builder")
        admin(proc, "grant", "t-pull", "--namespace", "team-a", "--service-account", "reader")
        admin(proc, "grant", "t-pull", "--namespace", "team-a", "--service-account", "edge-node")
        yield AuthPrimary(proc, builder, reader, edge_node)
