"""The JSON management API: admin-only, the same service layer as the CLI, OCI error envelopes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import CHEAP_ARGON2
from tests.serverproc import RegistryProcess


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RegistryProcess, httpx.Client]]:
    proc = RegistryProcess(tmp_path_factory.mktemp("mgmt") / "data", "--auth", "token", env=CHEAP_ARGON2)
    with proc:
        admin = json.loads((proc.data / "admin-credential.json").read_text())
        with httpx.Client(base_url=f"{proc.url}/api/v1", auth=(admin["username"], admin["password"])) as client:
            yield proc, client


def test_admin_lifecycle_and_the_new_credential_works(api: tuple[RegistryProcess, httpx.Client]) -> None:
    proc, client = api
    assert client.post("/namespaces", json={"name": "apps", "description": "d"}).status_code == 201
    assert client.post("/namespaces", json={"name": "apps"}).json()["errors"][0]["code"] == "CONFLICT"
    assert client.post("/namespaces", json={"name": "Bad Name"}).status_code == 400
    created = client.post("/service-accounts", json={"name": "deployer"})
    assert created.status_code == 201
    cred = created.json()["credential"]
    assert cred["username"].startswith("deployer-") and len(cred["password"]) >= 40
    assert client.post("/roles", json={"name": "ci", "permissions": ["pull", "list"]}).status_code == 201
    binding = {"role": "ci", "namespace": "apps", "subject_kind": "service-account", "subject_name": "deployer"}
    assert client.post("/bindings", json=binding).status_code == 201
    assert binding in client.get("/bindings").json()
    # The credential the API created authenticates on /v2 with exactly the granted rights.
    v2 = httpx.Client(base_url=proc.url, auth=(cred["username"], cred["password"]))
    assert v2.get("/v2/apps/x/tags/list").status_code == 404  # allowed: the repository just does not exist
    assert v2.post("/v2/apps/x/blobs/uploads/").status_code == 403  # no push
    listed = client.get("/service-accounts/deployer/credentials").json()
    assert [c["username"] for c in listed] == [cred["username"]] and "password" not in listed[0]
    assert client.delete(f"/credentials/{cred['username']}").json()["revoked"] is not None
    assert v2.get("/v2/").status_code == 401
    assert client.request("DELETE", "/bindings", json=binding).status_code == 204
    assert client.delete("/namespaces/apps").status_code == 204
    records = client.get("/audit", params={"limit": 50}).json()
    events = {r["event"] for r in records}
    assert {"namespace.create", "service-account.create", "role.grant", "credential.revoke"} <= events


def test_non_admins_and_strangers_are_refused(api: tuple[RegistryProcess, httpx.Client]) -> None:
    proc, client = api
    cred = client.post("/users", json={"name": "bob"}).json()["credential"]
    plain = httpx.get(f"{proc.url}/api/v1/namespaces")
    assert plain.status_code == 401 and plain.json()["errors"][0]["code"] == "UNAUTHORIZED"
    bob = httpx.get(f"{proc.url}/api/v1/namespaces", auth=(cred["username"], cred["password"]))
    assert bob.status_code == 403 and bob.json()["errors"][0]["code"] == "DENIED"
    wrong = httpx.get(f"{proc.url}/api/v1/namespaces", auth=(cred["username"], "wrong"))
    assert wrong.status_code == 401


def test_bearer_token_of_an_admin_works(api: tuple[RegistryProcess, httpx.Client]) -> None:
    proc, client = api
    assert isinstance(client.auth, httpx.BasicAuth)
    token = client.get(f"{proc.url}/token", params={"service": "registry"}).json()["token"]
    r = httpx.get(f"{proc.url}/api/v1/roles", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and {"admin", "puller", "maintainer"} <= {role["name"] for role in r.json()}


def test_openapi_document(api: tuple[RegistryProcess, httpx.Client], tmp_path: Path) -> None:
    proc, client = api
    doc = httpx.get(f"{proc.url}/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.") and "/namespaces" in doc["paths"] and "/bindings" in doc["paths"]
    assert client.get("/things").status_code == 404
