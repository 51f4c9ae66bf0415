"""One IAM-enabled registry shared by the IAM tests, and the helpers they use to talk to it.

The world (built once per session, in about a second: the IAM objects are created through the management
API, which is the same IamService as ``registry admin``, instead of one CLI process per object):

- namespaces ``team-a`` (private), ``team-b`` (private), ``pub`` (public);
- service accounts ``sa-puller`` … ``sa-maintainer``, each bound to that built-in role on ``team-a``;
- ``sa-unbound`` with no binding at all;
- ``sa-teamed``, a member of team ``builders`` which holds ``writer`` on ``team-b``;
- in each namespace, ``<ns>/app``: an image tagged ``v1`` and a loose blob, pushed by the admin.

Every password and token a test uses is registered in ``IamRegistry.secrets`` so that the last test of
``test_tokens_http.py`` can check that none of them ever reached the server log.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.api.conftest import CHEAP_ARGON2
from tests.api.ocihelpers import OCI_MANIFEST, digest, image_manifest, push_blob
from tests.serverproc import RegistryProcess

OWN, OTHER, PUBLIC = "team-a", "team-b", "pub"
NAMESPACES = (OWN, OTHER, PUBLIC)
BOUND_ROLES = ("puller", "reader", "pusher", "writer", "maintainer")
UNBOUND, TEAMED = "unbound", "teamed"
PRINCIPALS = (*BOUND_ROLES, UNBOUND, TEAMED)
TEAM, TEAM_ROLE = "builders", "writer"
SERVICE = "registry"  # no public_url, no auth.service: the token service (and issuer) is "registry"

ENV = {
    **CHEAP_ARGON2,
    # The matrix makes thousands of logins from 127.0.0.1 and a few deliberate failures; the lockout itself
    # is tested on a registry of its own.
    "REGISTRY__AUTH__FAILED_LOGIN_LIMIT": "1000",
    # As much logging as the server can do, so the "no secrets in the log" check means something.
    "REGISTRY__LOG__LEVEL": "debug",
    "REGISTRY__LOG__ACCESS_LOG": "true",
}

_PARAM = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(value: str) -> dict[str, str]:
    """``Bearer realm="…",service="…",scope="…",error="…"`` → its parameters (plus ``scheme``)."""
    scheme, _, rest = value.partition(" ")
    return {"scheme": scheme, **dict(_PARAM.findall(rest))}


def error_code(response: httpx.Response) -> str | None:
    """The first OCI error code of a response body, or None if it has none."""
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        return None
    return str(errors[0]["code"]) if isinstance(errors, list) and errors else None


def jwt_part(token: str, index: int) -> dict[str, Any]:
    """Decode the header (0) or the payload (1) of a JWT without verifying anything."""
    part = token.split(".")[index]
    doc: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return doc


@dataclass
class Account:
    name: str  # the service account
    username: str
    password: str

    @property
    def creds(self) -> tuple[str, str]:
        return (self.username, self.password)


@dataclass
class Content:
    """What the admin pushed into ``<ns>/app``."""

    config: bytes
    layer: bytes
    manifest: bytes
    blob: bytes  # a loose blob (not referenced by the manifest)

    @property
    def manifest_digest(self) -> str:
        return digest(self.manifest)

    @property
    def blob_digest(self) -> str:
        return digest(self.blob)


@dataclass
class IamRegistry:
    proc: RegistryProcess
    admin: Account
    accounts: dict[str, Account] = field(default_factory=dict)  # principal → its account
    content: dict[str, Content] = field(default_factory=dict)  # namespace → content of <ns>/app
    secrets: set[str] = field(default_factory=set)  # every password and token handed out in the tests
    # Kept-alive clients (a new httpx.Client costs tens of milliseconds): no credentials, and the admin's.
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))
    api: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    @property
    def url(self) -> str:
        return self.proc.url

    def client(self, auth: httpx.Auth | tuple[str, str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=auth, timeout=30)

    def admin_client(self) -> httpx.Client:
        """A new client with the admin's Basic credentials (``api`` is the shared one)."""
        return self.client(self.admin.creds)

    def keep(self, *values: str) -> None:
        """Remember secrets (passwords, tokens) for the log check."""
        self.secrets.update(v for v in values if v)

    def token(self, creds: tuple[str, str] | None, *scopes: str, method: str = "GET", **params: str) -> httpx.Response:
        """``GET /token?service=registry&scope=…`` (one ``scope`` parameter per scope) with optional Basic."""
        query: list[tuple[str, str]] = [("service", SERVICE), *(("scope", s) for s in scopes), *params.items()]
        response = self.http.request(method, f"{self.url}/token", params=query, auth=creds)
        if response.status_code == 200:
            body = response.json()
            self.keep(body.get("token", ""), body.get("refresh_token", ""))
        return response

    def issue(self, creds: tuple[str, str] | None, *scopes: str) -> str:
        """A token for ``scopes`` (asserting the token endpoint said 200)."""
        response = self.token(creds, *scopes)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def signing_key(self, kid: str | None = None) -> tuple[str, Any]:
        """(kid, private key) of the active signing key, or of ``kid``, read from the database."""
        from cryptography.hazmat.primitives import serialization

        with sqlite3.connect(self.proc.data / "registry.db") as db:
            if kid is None:
                row = db.execute(
                    "SELECT kid, private_pem FROM signing_keys WHERE retired IS NULL ORDER BY created DESC"
                ).fetchone()
            else:
                row = db.execute("SELECT kid, private_pem FROM signing_keys WHERE kid = ?", (kid,)).fetchone()
        assert row is not None
        return str(row[0]), serialization.load_pem_private_key(bytes(row[1]), password=None)

    def audit_rows(self, since_id: int = 0, event: str | None = None) -> list[dict[str, Any]]:
        """Audit records straight from the database (oldest first); tests use the CLI where it matters."""
        with sqlite3.connect(self.proc.data / "registry.db") as db:
            rows = db.execute(
                "SELECT id, event, outcome, actor, credential, source, detail FROM audit WHERE id > ? ORDER BY id",
                (since_id,),
            ).fetchall()
        keys = ("id", "event", "outcome", "actor", "credential", "source", "detail")
        records = [dict(zip(keys, r, strict=True)) | {"detail": json.loads(r[6] or "{}")} for r in rows]
        return [r for r in records if event is None or r["event"] == event]

    def last_audit_id(self) -> int:
        with sqlite3.connect(self.proc.data / "registry.db") as db:
            return int(db.execute("SELECT COALESCE(MAX(id), 0) FROM audit").fetchone()[0])

    def new_account(self, name: str, role: str | None = None, namespace: str = OWN) -> Account:
        """A new service account (through the management API), optionally bound to ``role`` on ``namespace``."""
        api = self.api
        created = api.post("/api/v1/service-accounts", json={"name": name})
        assert created.status_code == 201, created.text
        if role is not None:
            bound = api.post(
                "/api/v1/bindings",
                json={"role": role, "namespace": namespace, "subject_kind": "service-account", "subject_name": name},
            )
            assert bound.status_code == 201, bound.text
        credential = created.json()["credential"]
        account = Account(name, str(credential["username"]), str(credential["password"]))
        self.keep(account.password)
        return account

    def push_tag(self, repo: str, tag: str) -> None:
        """As the admin: tag the namespace's v1 manifest again as ``repo:tag`` (``repo`` in a world namespace)."""
        content = self.content[repo.split("/", 1)[0]]
        if repo.split("/", 1)[1] != "app":
            push_blob(self.api, repo, content.config)
            push_blob(self.api, repo, content.layer)
        r = self.api.put(
            f"/v2/{repo}/manifests/{tag}", content=content.manifest, headers={"Content-Type": OCI_MANIFEST}
        )
        assert r.status_code == 201, r.text

    def push_loose_blob(self, repo: str) -> tuple[str, bytes]:
        data = f"loose blob {uuid.uuid4()}".encode()
        return push_blob(self.api, repo, data), data

    def exists(self, path: str) -> bool:
        """HEAD ``path`` as the admin: 200 → True, 404 → False (anything else fails the test)."""
        status = self.api.head(path).status_code
        assert status in (200, 404), (path, status)
        return status == 200


def _setup(world: IamRegistry) -> None:
    api = world.api

    def call(method: str, path: str, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        r = api.request(method, f"/api/v1{path}", json=doc)
        assert r.status_code in (200, 201, 204), (method, path, r.status_code, r.text)
        return r.json() if r.content else {}

    for ns in NAMESPACES:
        call("POST", "/namespaces", {"name": ns, "public": ns == PUBLIC})
    for principal in PRINCIPALS:
        name = f"sa-{principal}"
        credential = call("POST", "/service-accounts", {"name": name})["credential"]
        world.accounts[principal] = Account(name, str(credential["username"]), str(credential["password"]))
        if principal in BOUND_ROLES:
            binding = {"role": principal, "namespace": OWN, "subject_kind": "service-account"}
            call("POST", "/bindings", {**binding, "subject_name": name})
    call("POST", "/teams", {"name": TEAM})
    call("PUT", f"/teams/{TEAM}/members/service-account/sa-{TEAMED}")
    call("POST", "/bindings", {"role": TEAM_ROLE, "namespace": OTHER, "subject_kind": "team", "subject_name": TEAM})

    for ns in NAMESPACES:
        repo = f"{ns}/app"
        config = json.dumps({"architecture": "amd64", "os": "linux", "ns": ns}).encode()
        layer = f"layer of {ns}".encode() * 100
        blob = f"loose blob of {ns}".encode()
        for data in (config, layer, blob):
            push_blob(api, repo, data)
        manifest = image_manifest(config, [layer])
        r = api.put(f"/v2/{repo}/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 201, r.text
        world.content[ns] = Content(config, layer, manifest, blob)
    world.keep(*(a.password for a in world.accounts.values()))


@pytest.fixture(scope="session")
def iam_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IamRegistry]:
    proc = RegistryProcess(tmp_path_factory.mktemp("iam") / "data", "--auth", "token", env=ENV)
    with proc:
        stored = json.loads((proc.data / "admin-credential.json").read_text())
        world = IamRegistry(proc, Account("admin", str(stored["username"]), str(stored["password"])))
        world.keep(world.admin.password)
        world.api.base_url = httpx.URL(proc.url)
        world.api.auth = httpx.BasicAuth(*world.admin.creds)
        with world.http, world.api:
            _setup(world)
            yield world
