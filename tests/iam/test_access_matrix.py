"""Every authorization decision of the /v2 API, checked against a table written out here.

Principals x operations x namespaces x auth style. The expected permissions come from ``GRANTS`` below (what
the fixture bound), never from the server's policy code:

- ``sa-<role>`` holds the built-in ``<role>`` on ``team-a``; ``sa-unbound`` holds nothing; ``sa-teamed``
  holds ``writer`` on ``team-b`` through its team; ``pub`` is public (anyone may pull and list its tags).
- Bearer style does what registry clients do: the request without credentials, the challenge's realm,
  service and scope, ``GET /token`` with Basic credentials, then the request again with the token. The token's
  ``access`` claim is checked too (the grant is the intersection of what was asked and what is allowed).
- Basic style sends the credentials on every /v2 request.
- The anonymous principal runs "none" (no credentials at all) and "bearer" (an anonymous token).

Denials: a token lacking access → 401 ``UNAUTHORIZED`` + ``error="insufficient_scope"``; valid Basic
credentials lacking the right → 403 ``DENIED``; anonymous → 401 with a plain challenge naming the scope.
``tags/list`` with pull but without ``list`` → 403 ``DENIED`` whatever the style (a new token cannot help).

Each checked (request → status, error code, challenge) is one "decision"; the module counts them, prints the
total and checks it against the number the parametrization implies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.api.conftest import admin
from tests.api.ocihelpers import OCI_MANIFEST, digest, image_manifest
from tests.iam.conftest import (
    BOUND_ROLES,
    NAMESPACES,
    OTHER,
    OWN,
    PUBLIC,
    SERVICE,
    TEAMED,
    UNBOUND,
    IamRegistry,
    error_code,
    jwt_part,
    parse_challenge,
)
from tests.serverproc import BIN

ANONYMOUS = "anonymous"
ACCOUNTS = (*BOUND_ROLES, UNBOUND, TEAMED)

# What each principal was granted, per namespace (the fixture's bindings, written out by hand).
GRANTS: dict[str, dict[str, set[str]]] = {
    "puller": {OWN: {"pull"}},
    "reader": {OWN: {"pull", "list"}},
    "pusher": {OWN: {"pull", "push"}},
    "writer": {OWN: {"pull", "push", "list"}},
    "maintainer": {OWN: {"pull", "push", "list", "delete"}},
    UNBOUND: {},
    TEAMED: {OTHER: {"pull", "push", "list"}},
    ANONYMOUS: {},
}
PUBLIC_GRANT = {"pull", "list"}  # what everyone, anonymous included, may do in a public namespace


def perms(principal: str, namespace: str) -> set[str]:
    have = set(GRANTS[principal].get(namespace, set()))
    if namespace == PUBLIC:
        have |= PUBLIC_GRANT
    return have


# operation → the actions its challenge names (and a token must carry) on the target repository.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "pull_manifest": ("pull",),
    "pull_blob": ("pull",),
    "push_blob": ("pull", "push"),
    "push_manifest": ("pull", "push"),
    "list_tags": ("pull",),  # …and the list permission, checked live
    "delete_tag": ("delete",),
    "delete_blob": ("delete",),
    f"mount_from_{OWN}": ("pull", "push"),  # …and pull on the source, else an upload session
    f"mount_from_{OTHER}": ("pull", "push"),
    f"mount_from_{PUBLIC}": ("pull", "push"),
}
SUCCESS = {
    "pull_manifest": 200,
    "pull_blob": 200,
    "push_blob": 201,
    "push_manifest": 201,
    "list_tags": 200,
    "delete_tag": 202,
    "delete_blob": 202,
}
ANY = object()  # "do not check" (see test_anonymous_token_lacking_scope_gets_insufficient_scope)


@dataclass(frozen=True)
class Expect:
    status: int
    code: str | None = None  # OCI error code of the body
    error: object = None  # the challenge's error= parameter (None: no error parameter)


def expect(principal: str, style: str, namespace: str, op: str) -> Expect:
    have = perms(principal, namespace)
    if not set(OPERATIONS[op]) <= have:
        if principal == ANONYMOUS:
            return Expect(401, "UNAUTHORIZED", ANY if style == "bearer" else None)
        if style == "bearer":
            return Expect(401, "UNAUTHORIZED", "insufficient_scope")
        return Expect(403, "DENIED")
    if op == "list_tags" and "list" not in have:
        return Expect(403, "DENIED")
    if op.startswith("mount_from_"):
        source = op.removeprefix("mount_from_")
        return Expect(201 if "pull" in perms(principal, source) else 202)
    return Expect(SUCCESS[op])


def expected_grant(principal: str, scope: str) -> list[dict[str, Any]]:
    """The ``access`` claim entries a token for ``scope`` (space-separated scopes) must carry."""
    granted = []
    for one in scope.split():
        rtype, name, actions = one.split(":")
        if rtype == "registry":
            if principal != ANONYMOUS:
                granted.append({"type": rtype, "name": name, "actions": ["*"]})
            continue
        allowed = [a for a in actions.split(",") if a in perms(principal, name.split("/", 1)[0])]
        if allowed:
            granted.append({"type": rtype, "name": name, "actions": allowed})
    return granted


class Decisions:
    """Collects checked decisions; a test fails at the end listing every mismatch, not just the first."""

    counts: Counter[str] = Counter()

    def __init__(self, label: str) -> None:
        self.label = label
        self.mismatches: list[str] = []

    def check(self, what: str, ok: bool, detail: object = "") -> None:
        Decisions.counts[self.label.split("[", 1)[0]] += 1
        if not ok:
            self.mismatches.append(f"{what}: {detail}")

    def response(self, what: str, response: httpx.Response, want: Expect) -> None:
        """One decision: status, error code and challenge of ``response``."""
        got_error = parse_challenge(response.headers.get("www-authenticate", "")).get("error")
        ok = (
            response.status_code == want.status
            and (want.code is None or error_code(response) == want.code)
            and (want.error is ANY or got_error == want.error)
        )
        self.check(
            what,
            ok,
            f"want {want}, got {response.status_code} {error_code(response)} error={got_error} {response.text[:200]}",
        )

    def done(self) -> None:
        assert not self.mismatches, f"{self.label}: {len(self.mismatches)} wrong decisions:\n" + "\n".join(
            self.mismatches
        )


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str] | None = None
    content: bytes | None = None
    headers: dict[str, str] | None = None


class Caller:
    """Sends requests as one principal in one auth style."""

    def __init__(self, world: IamRegistry, principal: str, style: str, decisions: Decisions) -> None:
        self.world = world
        self.principal = principal
        self.style = style
        self.decisions = decisions
        account = world.accounts.get(principal)
        self.creds = account.creds if account is not None else None
        self.client = world.client(self.creds if style == "basic" else None)

    def close(self) -> None:
        self.client.close()

    def send(self, req: Request, scope: str) -> httpx.Response:
        """``scope``: what the operation needs (space-separated), per the table; the challenge must name it."""
        first = self._send(req)
        if self.style == "basic":
            return first
        if first.status_code == 401:
            challenge = parse_challenge(first.headers["www-authenticate"])
            self.decisions.check(
                f"{req.method} {req.path} challenge",
                challenge.get("scheme") == "Bearer"
                and challenge.get("realm") == f"{self.world.url}/token"
                and challenge.get("service") == SERVICE
                and challenge.get("scope") == scope
                and "error" not in challenge,
                challenge,
            )
            if self.style == "none":
                return first
            realm, params = challenge["realm"], {"service": challenge["service"], "scope": challenge["scope"]}
        elif self.style == "none":
            return first
        else:  # anonymous may already do this (a public namespace): ask for the token anyway
            realm, params = f"{self.world.url}/token", {"service": SERVICE, "scope": scope}
        issued = self.client.get(realm, params=params, auth=self.creds)
        granted = issued.json().get("token") if issued.status_code == 200 else None
        access = jwt_part(granted, 1).get("access") if granted else None
        self.decisions.check(
            f"token for {scope}",
            issued.status_code == 200 and access == expected_grant(self.principal, scope),
            f"{issued.status_code} access={access} want {expected_grant(self.principal, scope)}",
        )
        self.world.keep(granted or "")
        return self._send(req, {"Authorization": f"Bearer {granted}"})

    def _send(self, req: Request, extra: dict[str, str] | None = None) -> httpx.Response:
        return self.client.request(
            req.method,
            req.path,
            params=req.params,
            content=req.content,
            headers={**(req.headers or {}), **(extra or {})},
        )


def run_operation(world: IamRegistry, caller: Caller, decisions: Decisions, namespace: str, op: str) -> None:
    """Perform ``op`` in ``namespace``, check the decision and its effect (or absence of effect)."""
    content = world.content[namespace]
    repo = f"{namespace}/app"
    scope = f"repository:{repo}:{','.join(OPERATIONS[op])}"
    want = expect(caller.principal, caller.style, namespace, op)
    what = f"{op} {namespace}"
    if op == "pull_manifest":
        r = caller.send(Request("GET", f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST}), scope)
        decisions.response(what, r, want)
        if r.status_code == 200:
            assert r.content == content.manifest and r.headers["docker-content-digest"] == content.manifest_digest
    elif op == "pull_blob":
        r = caller.send(Request("GET", f"/v2/{repo}/blobs/{content.blob_digest}"), scope)
        decisions.response(what, r, want)
        if r.status_code == 200:
            assert r.content == content.blob
    elif op in ("push_blob", "push_manifest"):
        layer = f"pushed by {caller.principal}/{caller.style} {uuid.uuid4()}".encode()
        if op == "push_blob":
            r = caller.send(Request("POST", f"/v2/{repo}/blobs/uploads/", {"digest": digest(layer)}, layer), scope)
            decisions.response(what, r, want)
            assert world.exists(f"/v2/{repo}/blobs/{digest(layer)}") == (r.status_code == 201), what
        else:
            manifest = image_manifest(content.config, [content.layer], annotations={"by": layer.decode()})
            tag = f"pushed-{uuid.uuid4().hex[:8]}"
            r = caller.send(
                Request("PUT", f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}),
                scope,
            )
            decisions.response(what, r, want)
            assert world.exists(f"/v2/{repo}/manifests/{tag}") == (r.status_code == 201), what
    elif op == "list_tags":
        r = caller.send(Request("GET", f"/v2/{repo}/tags/list"), scope)
        decisions.response(what, r, want)
        if r.status_code == 200:
            assert r.json()["name"] == repo and "v1" in r.json()["tags"]
    elif op == "delete_tag":
        tag = f"doomed-{uuid.uuid4().hex[:8]}"
        world.push_tag(repo, tag)
        r = caller.send(Request("DELETE", f"/v2/{repo}/manifests/{tag}"), scope)
        decisions.response(what, r, want)
        assert world.exists(f"/v2/{repo}/manifests/{tag}") == (r.status_code != 202), what
    elif op == "delete_blob":
        blob, _ = world.push_loose_blob(repo)
        r = caller.send(Request("DELETE", f"/v2/{repo}/blobs/{blob}"), scope)
        decisions.response(what, r, want)
        assert world.exists(f"/v2/{repo}/blobs/{blob}") == (r.status_code != 202), what
    else:
        source = op.removeprefix("mount_from_")
        target = f"{namespace}/m-{uuid.uuid4().hex[:10]}"
        blob = world.content[source].blob_digest
        scope = f"repository:{target}:pull,push repository:{source}/app:pull"
        r = caller.send(
            Request("POST", f"/v2/{target}/blobs/uploads/", {"mount": blob, "from": f"{source}/app"}), scope
        )
        decisions.response(what, r, want)
        if r.status_code == 201:
            assert (
                r.headers["location"].endswith(f"/v2/{target}/blobs/{blob}")
                and r.headers["docker-content-digest"] == blob
            )
        if r.status_code == 202:
            assert f"/v2/{target}/blobs/uploads/" in r.headers["location"]
        assert world.exists(f"/v2/{target}/blobs/{blob}") == (r.status_code == 201), what


STYLES = [(p, s) for p in ACCOUNTS for s in ("bearer", "basic")] + [(ANONYMOUS, "none"), (ANONYMOUS, "bearer")]


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize(("principal", "style"), STYLES)
def test_operation_matrix(iam_registry: IamRegistry, principal: str, style: str, namespace: str) -> None:
    decisions = Decisions(f"test_operation_matrix[{principal}-{style}-{namespace}]")
    caller = Caller(iam_registry, principal, style, decisions)
    try:
        for op in OPERATIONS:
            run_operation(iam_registry, caller, decisions, namespace, op)
    finally:
        caller.close()
    decisions.done()


@pytest.mark.parametrize(("principal", "style"), STYLES)
def test_catalog_shows_only_listable_namespaces(iam_registry: IamRegistry, principal: str, style: str) -> None:
    decisions = Decisions(f"test_catalog[{principal}-{style}]")
    caller = Caller(iam_registry, principal, style, decisions)
    try:
        r = caller.send(Request("GET", "/v2/_catalog", {"n": "10000"}), "registry:catalog:*")
    finally:
        caller.close()
    if principal == ANONYMOUS:
        decisions.response("catalog", r, Expect(401, "UNAUTHORIZED", ANY if style == "bearer" else None))
    else:
        decisions.response("catalog", r, Expect(200))
        visible = {name.split("/", 1)[0] for name in r.json()["repositories"]}
        want = {ns for ns in NAMESPACES if "list" in perms(principal, ns)}
        assert visible == want, (principal, style, visible, want)
    decisions.done()


def test_anonymous_challenge_on_v2_base(iam_registry: IamRegistry) -> None:
    decisions = Decisions("test_names_and_base")
    with iam_registry.client() as anonymous:
        r = anonymous.get("/v2/")
    decisions.response("GET /v2/ anonymous", r, Expect(401, "UNAUTHORIZED"))
    challenge = parse_challenge(r.headers["www-authenticate"])
    assert challenge == {"scheme": "Bearer", "realm": f"{iam_registry.url}/token", "service": SERVICE}
    for principal in ("puller", UNBOUND):
        with iam_registry.client(iam_registry.accounts[principal].creds) as basic:
            decisions.response(f"GET /v2/ basic {principal}", basic.get("/v2/"), Expect(200))
        token = iam_registry.issue(iam_registry.accounts[principal].creds)
        with iam_registry.client() as client:
            r = client.get("/v2/", headers={"Authorization": f"Bearer {token}"})
        decisions.response(f"GET /v2/ bearer {principal}", r, Expect(200))
    decisions.done()


def test_repository_names_need_an_existing_namespace(iam_registry: IamRegistry) -> None:
    decisions = Decisions("test_names_and_base")
    world = iam_registry
    maintainer = world.accounts["maintainer"]
    flat_want = Expect(400, "NAME_INVALID")
    with world.admin_client() as api:
        r = api.post("/v2/flat/blobs/uploads/")
        decisions.response("admin basic: single-component name", r, flat_want)
        assert "<namespace>/<name>" in r.json()["errors"][0]["message"]
        decisions.response(
            "admin basic: unknown namespace", api.get("/v2/nowhere/app/tags/list"), Expect(404, "NAME_UNKNOWN")
        )
        decisions.response(
            "admin basic: unknown namespace push",
            api.post("/v2/nowhere/app/blobs/uploads/"),
            Expect(404, "NAME_UNKNOWN"),
        )
    with world.client(maintainer.creds) as basic:
        decisions.response("basic: single-component name", basic.get("/v2/flat/manifests/v1"), flat_want)
        decisions.response(
            "basic: unknown namespace", basic.get("/v2/nowhere/app/manifests/v1"), Expect(404, "NAME_UNKNOWN")
        )
    with world.client() as anonymous:
        decisions.response("anonymous: single-component name", anonymous.get("/v2/flat/manifests/v1"), flat_want)
        r = anonymous.get("/v2/nowhere/app/manifests/v1")
        decisions.response("anonymous: unknown namespace", r, Expect(401, "UNAUTHORIZED"))
        # A token cannot be granted anything on a namespace that does not exist.
        issued = world.token(maintainer.creds, "repository:nowhere/app:pull,push")
        decisions.check(
            "token for an unknown namespace",
            issued.status_code == 200 and jwt_part(issued.json()["token"], 1)["access"] == [],
            issued.text,
        )
        r = anonymous.get("/v2/nowhere/app/manifests/v1", headers={"Authorization": f"Bearer {issued.json()['token']}"})
        decisions.response("bearer: unknown namespace", r, Expect(401, "UNAUTHORIZED", "insufficient_scope"))
    decisions.done()


def test_upload_sessions_head_requests_and_catalog_pages(iam_registry: IamRegistry) -> None:
    """An upload session belongs to its repository; HEAD is decided like GET; each catalog page is filtered."""
    world = iam_registry
    decisions = Decisions("test_sessions_head_paging")
    teamed, writer = world.accounts[TEAMED].creds, world.accounts["writer"].creds
    with world.client(teamed) as other_team, world.client(writer) as own_team, world.client() as anonymous:
        started = other_team.post(f"/v2/{OTHER}/app/blobs/uploads/")
        decisions.response("start an upload in team-b", started, Expect(202))
        session = started.headers["location"].rstrip("/").rsplit("/", 1)[1]
        data = b"written through another repository's path"
        # The writer of team-a may push to team-a, but a team-b session is unknown there.
        unknown = Expect(404, "BLOB_UPLOAD_UNKNOWN")
        for method, extra in (
            ("PATCH", {"content": data}),
            ("PUT", {"params": {"digest": digest(data)}, "content": data}),
            ("DELETE", {}),
        ):
            r = own_team.request(method, f"/v2/{OWN}/app/blobs/uploads/{session}", **extra)  # type: ignore[arg-type]
            decisions.response(f"{method} a team-b session through team-a", r, unknown)
        status = other_team.get(f"/v2/{OTHER}/app/blobs/uploads/{session}")
        decisions.response("the session is untouched", status, Expect(204))
        assert status.headers["range"] == "0-0"

        blob = world.content[OWN].blob_digest
        for path in (f"/v2/{OWN}/app/manifests/v1", f"/v2/{OWN}/app/blobs/{blob}"):
            r = anonymous.head(path)
            decisions.response(f"anonymous HEAD {path}", r, Expect(401))
            assert parse_challenge(r.headers["www-authenticate"])["scope"] == f"repository:{OWN}/app:pull"
            decisions.response(f"team-b HEAD {path}", other_team.head(path), Expect(403))
        decisions.response("anonymous HEAD in pub", anonymous.head(f"/v2/{PUBLIC}/app/manifests/v1"), Expect(200))

        for ns in NAMESPACES:
            world.push_tag(f"{ns}/paged", "v1")
        seen: list[str] = []
        url: str | None = "/v2/_catalog?n=2"
        while url:
            page = other_team.get(url)
            assert page.status_code == 200 and len(page.json()["repositories"]) <= 2, page.text
            seen += page.json()["repositories"]
            link = page.headers.get("link")
            url = link.split(";", 1)[0].strip("<>").removeprefix(world.url) if link else None
        with world.client(world.admin.creds) as everything:
            every = everything.get("/v2/_catalog", params={"n": "10000"}).json()["repositories"]
        want = [repo for repo in every if repo.split("/", 1)[0] in (OTHER, PUBLIC)]
        decisions.check("paged catalog of team-b's member", seen == want and len(want) > 4, (seen, want))
    decisions.done()


# -- credential states ------------------------------------------------------------------------------------


def _cli(world: IamRegistry, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [BIN / "registry", "admin", "--data", str(world.proc.data), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=world.proc.env_for_cli(),
    )


def _result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


class StateProbe:
    """Pull ``team-a/app:v1`` with a username/password, Bearer (token endpoint) or Basic style."""

    def __init__(self, world: IamRegistry, decisions: Decisions) -> None:
        self.world = world
        self.decisions = decisions
        self.client = world.client()

    def check(self, what: str, username: str, password: str, ok: bool) -> str | None:
        """Both styles; returns the token (Bearer) when ``ok``."""
        world, creds = self.world, (username, password)
        issued = world.token(creds, f"repository:{OWN}/app:pull")
        token: str | None = None
        if ok:
            self.decisions.check(f"{what}: token", issued.status_code == 200, issued.text)
            token = issued.json().get("token")
            r = self.client.get(f"/v2/{OWN}/app/manifests/v1", headers={"Authorization": f"Bearer {token}"})
            self.decisions.response(f"{what}: bearer pull", r, Expect(200))
        else:
            challenge = issued.headers.get("www-authenticate", "")
            self.decisions.check(
                f"{what}: token refused",
                issued.status_code == 401 and error_code(issued) == "UNAUTHORIZED" and challenge.startswith("Basic "),
                f"{issued.status_code} {challenge} {issued.text[:200]}",
            )
        r = self.client.get(f"/v2/{OWN}/app/manifests/v1", auth=creds)
        self.decisions.response(f"{what}: basic pull", r, Expect(200) if ok else Expect(401, "UNAUTHORIZED"))
        if not ok:
            assert parse_challenge(r.headers["www-authenticate"]).get("scope") == f"repository:{OWN}/app:pull"
        return token


def test_credential_states(iam_registry: IamRegistry) -> None:
    world = iam_registry
    decisions = Decisions("test_credential_states")
    probe = StateProbe(world, decisions)
    account = world.new_account("sa-states", "reader")
    # Started first (a CLI run takes about a second): a credential that expires in one second.
    short = _cli(world, "credential", "create", "--service-account", "sa-states", "--expires-in", "1")
    since = world.last_audit_id()

    probe.check("valid", *account.creds, ok=True)
    probe.check("wrong secret", account.username, account.password[:-1] + "x", ok=False)
    probe.check("unknown user", "sa-nobody-00000000", account.password, ok=False)
    probe.check("empty password", account.username, "", ok=False)

    expiring = _result(short)
    world.keep(expiring["password"])
    assert expiring["expires"] is not None
    time.sleep(max(0.0, float(expiring["expires"]) - time.time() + 0.2))
    probe.check("expired credential", expiring["username"], expiring["password"], ok=False)

    reasons = Counter(
        (r["detail"].get("reason"), r["credential"])
        for r in world.audit_rows(since, "auth.basic")
        if r["outcome"] == "failure"
    )
    # Two refusals per state (token endpoint and Basic), each audited with its reason.
    assert reasons[("wrong secret", account.username)] == 4, reasons  # the wrong and the empty secret
    assert reasons[("unknown credential", "sa-nobody-00000000")] == 2, reasons
    assert reasons[("credential expired", expiring["username"])] == 2, reasons
    decisions.done()


def test_a_cached_credential_stops_working_when_it_expires(iam_registry: IamRegistry) -> None:
    world = iam_registry
    decisions = Decisions("test_credential_states")
    probe = StateProbe(world, decisions)
    with world.admin_client() as api:
        r = api.post("/api/v1/service-accounts/sa-states/credentials", json={"expires_in": 2})
        assert r.status_code == 201, r.text
    expiring = r.json()
    world.keep(expiring["password"])
    probe.check("before expiry (now cached)", expiring["username"], expiring["password"], ok=True)
    time.sleep(max(0.0, float(expiring["expires"]) - time.time() + 0.2))
    probe.check("after expiry", expiring["username"], expiring["password"], ok=False)
    decisions.done()


def test_revocation_while_the_server_runs_beats_the_basic_cache(iam_registry: IamRegistry) -> None:
    world = iam_registry
    decisions = Decisions("test_credential_states")
    probe = StateProbe(world, decisions)
    account = world.new_account("sa-revoked", "reader")
    offline = world.token(account.creds, f"repository:{OWN}/app:pull", offline_token="true")
    assert offline.status_code == 200 and offline.json()["refresh_token"]
    for _ in range(2):  # the second round is answered from the verified-credential cache
        probe.check("before revocation", *account.creds, ok=True)

    revoked = _result(_cli(world, "credential", "revoke", account.username))
    assert revoked["revoked"] is not None

    probe.check("revoked", *account.creds, ok=False)
    refreshed = world.http.post(
        f"{world.url}/token",
        data={"grant_type": "refresh_token", "refresh_token": offline.json()["refresh_token"], "service": SERVICE},
    )
    decisions.response("refresh token of a revoked credential", refreshed, Expect(401, "UNAUTHORIZED"))
    decisions.done()


# -- forged and confused tokens ---------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": SERVICE,
        "sub": "service-account:sa-maintainer",
        "aud": SERVICE,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "access": [{"type": "repository", "name": f"{OWN}/app", "actions": ["pull"]}],
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(signature)}"


# case → the audit reason the refusal must carry
FORGERIES = {
    "other_key_same_kid": "bad_signature",
    "alg_none": "alg_not_allowed",
    "alg_none_with_real_signature_stripped": "alg_not_allowed",
    "hs256_keyed_with_public_key": "alg_not_allowed",
    "wrong_audience": "wrong_audience",
    "refresh_audience_without_token_use": "not_an_access_token",
    "wrong_issuer": "wrong_issuer",
    "expired": "expired",
    "not_yet_valid": "not_yet_valid",
    "missing_exp": "malformed",
    "unknown_kid": "unknown_key",
    "refresh_token_as_access_token": "not_an_access_token",
    "tampered_payload": "bad_signature",
    "garbage": "malformed",
}


def _forge(world: IamRegistry, case: str) -> str:
    current = world.issue(world.accounts["maintainer"].creds, f"repository:{OWN}/app:pull")
    kid, key = world.signing_key(jwt_part(current, 0)["kid"])  # the key the server signs with right now
    header = {"alg": "ES256", "kid": kid, "typ": "JWT"}
    if case == "control":
        return jwt.encode(_claims(), key, algorithm="ES256", headers=header)
    if case == "other_key_same_kid":
        return jwt.encode(_claims(), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers=header)
    if case == "alg_none":
        return _unsigned({"alg": "none", "kid": kid, "typ": "JWT"}, _claims())
    if case == "alg_none_with_real_signature_stripped":
        genuine = jwt.encode(_claims(), key, algorithm="ES256", headers=header)
        head = _b64(json.dumps({"alg": "none", "kid": kid}).encode())
        return f"{head}.{genuine.split('.')[1]}."
    if case == "hs256_keyed_with_public_key":
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        head = _b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}).encode())
        body = _b64(json.dumps(_claims()).encode())
        signature = hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(signature)}"
    if case == "wrong_audience":
        return jwt.encode(_claims(aud="another-registry"), key, algorithm="ES256", headers=header)
    if case == "refresh_audience_without_token_use":
        return jwt.encode(_claims(aud=f"{SERVICE}#refresh"), key, algorithm="ES256", headers=header)
    if case == "wrong_issuer":
        return jwt.encode(_claims(iss="https://issuer.example"), key, algorithm="ES256", headers=header)
    if case == "expired":
        past = int(time.time()) - 3600
        return jwt.encode(_claims(iat=past, nbf=past, exp=past + 300), key, algorithm="ES256", headers=header)
    if case == "not_yet_valid":
        future = int(time.time()) + 3600
        return jwt.encode(_claims(iat=future, nbf=future, exp=future + 300), key, algorithm="ES256", headers=header)
    if case == "missing_exp":
        return jwt.encode(_claims(exp=None), key, algorithm="ES256", headers=header)
    if case == "unknown_kid":
        return jwt.encode(_claims(), key, algorithm="ES256", headers={**header, "kid": "no-such-key"})
    if case == "refresh_token_as_access_token":
        issued = world.token(world.accounts["maintainer"].creds, f"repository:{OWN}/app:pull", offline_token="true")
        return str(issued.json()["refresh_token"])
    if case == "tampered_payload":  # a genuine token whose access claim was widened afterwards
        head, _, signature = current.split(".")
        claims = jwt_part(current, 1)
        claims["access"] = [{"type": "repository", "name": f"{OTHER}/app", "actions": ["pull", "push", "delete"]}]
        return f"{head}.{_b64(json.dumps(claims).encode())}.{signature}"
    if case == "garbage":
        return "not-a-jwt"
    raise AssertionError(case)


def test_a_token_signed_with_the_registry_key_is_accepted(iam_registry: IamRegistry) -> None:
    """The control for the forgeries: each of them differs from this token in one thing only."""
    decisions = Decisions("test_forged_tokens")
    token = _forge(iam_registry, "control")
    with iam_registry.client() as client:
        r = client.get(f"/v2/{OWN}/app/manifests/v1", headers={"Authorization": f"Bearer {token}"})
    decisions.response("control token", r, Expect(200))
    decisions.done()


@pytest.mark.parametrize("case", FORGERIES)
def test_forged_and_confused_tokens_are_refused(iam_registry: IamRegistry, case: str) -> None:
    world = iam_registry
    decisions = Decisions("test_forged_tokens")
    token = _forge(world, case)
    since = world.last_audit_id()
    with world.client() as client:
        for path in (f"/v2/{OWN}/app/manifests/v1", f"/v2/{OTHER}/app/manifests/v1"):
            r = client.get(path, headers={"Authorization": f"Bearer {token}"})
            decisions.response(f"{case} {path}", r, Expect(401, "UNAUTHORIZED", "invalid_token"))
    reasons = [r["detail"].get("reason") for r in world.audit_rows(since, "auth.token")]
    assert reasons == [FORGERIES[case]] * 2, reasons
    decisions.done()


def test_a_token_for_one_repository_is_not_valid_for_another(iam_registry: IamRegistry) -> None:
    world = iam_registry
    decisions = Decisions("test_forged_tokens")
    maintainer = world.accounts["maintainer"]
    token = world.issue(maintainer.creds, f"repository:{OWN}/app:pull")
    bearer = {"Authorization": f"Bearer {token}"}
    with world.client() as client:
        decisions.response("same repository", client.get(f"/v2/{OWN}/app/manifests/v1", headers=bearer), Expect(200))
        world.push_tag(f"{OWN}/other", "v1")
        insufficient = Expect(401, "UNAUTHORIZED", "insufficient_scope")
        for path in (
            f"/v2/{OWN}/other/manifests/v1",
            f"/v2/{OWN}/app-other/manifests/v1",
            f"/v2/{PUBLIC}/app/manifests/v1",
        ):
            r = client.get(path, headers=bearer)
            decisions.response(f"other repository {path}", r, insufficient)
            repo = path.split("/manifests/")[0].removeprefix("/v2/")
            assert parse_challenge(r.headers["www-authenticate"])["scope"] == f"repository:{repo}:pull"
        # …nor for another action on the same repository, although the account may do it.
        r = client.post(f"/v2/{OWN}/app/blobs/uploads/", headers=bearer)
        decisions.response("push with a pull token", r, insufficient)
        assert parse_challenge(r.headers["www-authenticate"])["scope"] == f"repository:{OWN}/app:pull,push"
        r = client.delete(f"/v2/{OWN}/app/manifests/v1", headers=bearer)
        decisions.response("delete with a pull token", r, insufficient)
        r = client.get("/v2/_catalog", headers=bearer)
        decisions.response("catalog with a repository token", r, insufficient)
    decisions.done()


def test_anonymous_token_lacking_scope_gets_insufficient_scope(iam_registry: IamRegistry) -> None:
    token = iam_registry.issue(None, f"repository:{OWN}/app:pull")
    assert jwt_part(token, 1)["access"] == []
    with iam_registry.client() as client:
        r = client.get(f"/v2/{OWN}/app/manifests/v1", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert parse_challenge(r.headers["www-authenticate"]).get("error") == "insufficient_scope"


# -- live changes -----------------------------------------------------------------------------------------


def test_binding_and_membership_changes_apply_at_once_to_basic(iam_registry: IamRegistry) -> None:
    """Basic credentials are decided on live bindings (the verified-credential cache keeps only the secret)."""
    world = iam_registry
    decisions = Decisions("test_live_changes")
    account = world.new_account("sa-live")
    path = f"/v2/{OTHER}/app/manifests/v1"
    api = world.api
    with world.client(account.creds) as basic:
        decisions.response("no binding", basic.get(path), Expect(403, "DENIED"))
        assert api.put(f"/api/v1/teams/builders/members/service-account/{account.name}").status_code == 204
        decisions.response("joined the team", basic.get(path), Expect(200))
        assert api.delete(f"/api/v1/teams/builders/members/service-account/{account.name}").status_code == 204
        decisions.response("left the team", basic.get(path), Expect(403, "DENIED"))
        admin(world.proc, "grant", "puller", "--namespace", OTHER, "--service-account", account.name)
        decisions.response("granted through the CLI", basic.get(path), Expect(200))
        admin(world.proc, "revoke", "puller", "--namespace", OTHER, "--service-account", account.name)
        decisions.response("revoked through the CLI", basic.get(path), Expect(403, "DENIED"))
    decisions.done()


# -- the count --------------------------------------------------------------------------------------------

# Per test (family): the decisions each run checks. Bearer and "none": per operation the challenge (skipped
# where anonymous may already act: pull_manifest, pull_blob and list_tags in pub), the token's grant (Bearer
# only) and the request. Basic: the request alone.
_OPS = len(OPERATIONS)
_ANON_ALLOWED_IN_PUB = 3
_MATRIX = (
    len(ACCOUNTS) * (len(NAMESPACES) * _OPS * 3 - _ANON_ALLOWED_IN_PUB)  # account, bearer
    + len(ACCOUNTS) * len(NAMESPACES) * _OPS  # account, basic
    + len(NAMESPACES) * _OPS * 2
    - _ANON_ALLOWED_IN_PUB  # anonymous, none
    + len(NAMESPACES) * _OPS * 3
    - _ANON_ALLOWED_IN_PUB  # anonymous, bearer
)
EXPECTED = {
    "test_operation_matrix": _MATRIX,  # 7 * 87 + 7 * 30 + 57 + 87 = 963
    "test_catalog": len(ACCOUNTS) * 3 + len(ACCOUNTS) + 2 + 3,
    "test_names_and_base": 5 + 9,
    "test_credential_states": 11 + 5 + 9,
    "test_forged_tokens": 1 + 2 * len(FORGERIES) + 7,
    "test_live_changes": 5,
    "test_sessions_head_paging": 1 + 3 + 1 + 2 * 2 + 1 + 1,
}
TOTAL = 1087


def test_zz_decision_count(request: pytest.FixtureRequest) -> None:
    """Runs last: prints the number of decisions checked and compares it with what the tests above imply."""
    counts = dict(Decisions.counts)
    total = sum(counts.values())
    print(f"\nIAM access decisions checked: {total} {counts}")
    selected = sum(1 for item in request.session.items if item.module is request.module)
    collected = sum(1 for item in request.node.parent.collect() if isinstance(item, pytest.Function))  # type: ignore[union-attr]
    if selected != collected:
        pytest.skip(f"{selected} of {collected} tests of the module selected; the total is checked on a full run")
    assert counts == EXPECTED, (counts, EXPECTED)
    assert total == TOTAL == sum(EXPECTED.values()), total
