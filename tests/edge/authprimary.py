"""A primary with auth on (``--auth token``) for the edge's auth tests, and helpers to push to it and to get
tokens from it. Import the ``auth_primary`` fixture into a test module to use it.

Accounts: ``builder`` may pull and push ``team-a`` and ``team-b``; ``reader`` may pull ``team-a`` only;
``edge-node`` (an edge's identity) may pull ``team-a`` only. ``public`` is a public namespace. All of it is
created through the management API (``tests/adminapi.py``), in milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.adminapi import AdminApi
from tests.edge.ocipush import sha256
from tests.imagebuild import OCI_MANIFEST, BuiltImage
from tests.serverproc import RegistryProcess
from tests.tokenauth import DockerTokenAuth

CHEAP_ARGON2 = {"REGISTRY__AUTH__ARGON2_TIME_COST": "1", "REGISTRY__AUTH__ARGON2_MEMORY_KIB": "256"}
ACCESS_LOG = {"REGISTRY__LOG__ACCESS_LOG": "true"}
# Pull times reported by edges are written every half second (default 10 s), so the tests see them soon.
FAST_USAGE_FLUSH = {"REGISTRY__GC__USAGE_FLUSH_SECONDS": "0.5"}


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


@pytest.fixture(scope="module")
def auth_primary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthPrimary]:
    data = tmp_path_factory.mktemp("auth-primary") / "data"
    env = {**CHEAP_ARGON2, **ACCESS_LOG, **FAST_USAGE_FLUSH}
    with RegistryProcess(data, "--auth", "token", env=env) as proc, AdminApi(proc) as api:
        api.role("t-pull", "pull")
        api.role("t-push", "pull", "push")
        for ns in ("team-a", "team-b"):
            api.namespace(ns)
        api.namespace("public", public=True)
        builder, reader, edge_node = (Account(*api.service_account(n)) for n in ("builder", "reader", "edge-node"))
        for ns in ("team-a", "team-b", "public"):
            api.grant("t-push", ns, "builder")
        api.grant("t-pull", "team-a", "reader")
        api.grant("t-pull", "team-a", "edge-node")
        yield AuthPrimary(proc, builder, reader, edge_node)
