"""The token endpoint over HTTP, as the clients use it: Docker/podman/skopeo ``GET /token``, containerd's OAuth2
``POST /token``, refresh tokens, the JWKS, the claims, key rotation, failed-login throttling, audit records,
and what must never leak (secrets in the log, a readable admin credential file)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.api.conftest import CHEAP_ARGON2, admin
from tests.iam.conftest import OTHER, OWN, PUBLIC, SERVICE, IamRegistry, error_code, jwt_part, parse_challenge
from tests.serverproc import BIN, RegistryProcess

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def access(token: str) -> list[dict[str, Any]]:
    claims = jwt_part(token, 1)
    entries: list[dict[str, Any]] = claims["access"]
    return entries


def repo_entry(name: str, *actions: str) -> dict[str, Any]:
    return {"type": "repository", "name": name, "actions": list(actions)}


def post_token(world: IamRegistry, **form: str) -> httpx.Response:
    """containerd's ``POST /token`` (application/x-www-form-urlencoded)."""
    response = world.http.post(f"{world.url}/token", data=form)
    if response.status_code == 200:
        world.keep(response.json().get("token", ""), response.json().get("refresh_token", ""))
    return response


def cli(proc: RegistryProcess, *args: str) -> Any:
    out = subprocess.run(
        [BIN / "registry", "admin", "--data", str(proc.data), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=proc.env_for_cli(),
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# -- GET /token -------------------------------------------------------------------------------------------


def test_repeated_scope_parameters_and_one_space_separated_value_are_equivalent(iam_registry: IamRegistry) -> None:
    world = iam_registry
    writer = world.accounts["writer"].creds
    scopes = (f"repository:{OWN}/app:pull", f"repository:{OWN}/new:pull,push", f"repository:{PUBLIC}/app:pull")
    want = [
        repo_entry(f"{OWN}/app", "pull"),
        repo_entry(f"{OWN}/new", "pull", "push"),
        repo_entry(f"{PUBLIC}/app", "pull"),
    ]

    repeated = world.token(writer, *scopes)
    spaced = world.token(writer, " ".join(scopes))
    assert repeated.status_code == spaced.status_code == 200
    assert access(repeated.json()["token"]) == want
    assert access(spaced.json()["token"]) == want
    # Both forms at once, and the same repository asked twice: merged into one entry.
    mixed = world.token(writer, f"repository:{OWN}/app:pull {OTHER}-ignored", f"repository:{OWN}/app:push,pull")
    assert mixed.status_code == 200
    assert access(mixed.json()["token"]) == [repo_entry(f"{OWN}/app", "pull", "push")]
    # The token works for everything it names.
    bearer = {"Authorization": f"Bearer {repeated.json()['token']}"}
    assert world.http.get(f"{world.url}/v2/{OWN}/app/manifests/v1", headers=bearer).status_code == 200
    assert world.http.get(f"{world.url}/v2/{PUBLIC}/app/manifests/v1", headers=bearer).status_code == 200
    assert world.http.post(f"{world.url}/v2/{OWN}/new/blobs/uploads/", headers=bearer).status_code == 202


@pytest.mark.parametrize("principal", ["writer", "unbound", None])
def test_login_without_scope(iam_registry: IamRegistry, principal: str | None) -> None:
    """``podman login`` / ``skopeo login`` / ``docker login`` ask for a token with no scope at all."""
    world = iam_registry
    creds = world.accounts[principal].creds if principal else None
    response = world.token(creds)
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert access(token) == []
    claims = jwt_part(token, 1)
    assert claims["sub"] == (f"service-account:sa-{principal}" if principal else "anonymous:")
    # The /v2/ base endpoint accepts the token of any authenticated subject.
    r = world.http.get(f"{world.url}/v2/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == (200 if principal else 401)
    if principal:
        wrong = world.token((creds[0], "not-the-secret"))  # type: ignore[index]
        assert wrong.status_code == 401 and error_code(wrong) == "UNAUTHORIZED"
        assert wrong.headers["www-authenticate"].startswith("Basic ")


def test_a_partial_grant_is_not_an_error(iam_registry: IamRegistry) -> None:
    world = iam_registry
    reader = world.accounts["reader"].creds
    response = world.token(
        reader,
        f"repository:{OWN}/app:pull,push,delete",
        f"repository:{OTHER}/app:pull",
        f"repository:{PUBLIC}/app:push,pull",
        "registry:catalog:*",
        "not-a-scope",
        f"repository:{OWN}/app",  # no actions: malformed, ignored
    )
    assert response.status_code == 200, response.text
    assert access(response.json()["token"]) == [
        repo_entry(f"{OWN}/app", "pull"),
        repo_entry(f"{PUBLIC}/app", "pull"),
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]
    # Nothing at all granted is still a token (with an empty access claim), as Distribution does.
    nothing = world.token(world.accounts["unbound"].creds, f"repository:{OWN}/app:pull,push")
    assert nothing.status_code == 200 and access(nothing.json()["token"]) == []


@pytest.mark.parametrize(
    ("principal", "namespace", "want"),
    [
        ("maintainer", OWN, ["delete", "list", "pull", "push"]),
        ("reader", OWN, ["list", "pull"]),
        ("teamed", OTHER, ["list", "pull", "push"]),
        ("writer", OTHER, []),
        (None, PUBLIC, ["list", "pull"]),
        (None, OWN, []),
    ],
)
def test_wildcard_action_grants_everything_allowed(
    iam_registry: IamRegistry, principal: str | None, namespace: str, want: list[str]
) -> None:
    world = iam_registry
    creds = world.accounts[principal].creds if principal else None
    token = world.issue(creds, f"repository:{namespace}/app:*")
    assert access(token) == ([repo_entry(f"{namespace}/app", *want)] if want else [])


def test_offline_token_gives_a_refresh_token(iam_registry: IamRegistry) -> None:
    world = iam_registry
    writer = world.accounts["writer"]
    plain = world.token(writer.creds, f"repository:{OWN}/app:pull")
    assert plain.status_code == 200 and "refresh_token" not in plain.json()
    offline = world.token(writer.creds, f"repository:{OWN}/app:pull", offline_token="true")
    assert offline.status_code == 200
    refresh = offline.json()["refresh_token"]
    claims = jwt_part(refresh, 1)
    assert claims["sub"] == "service-account:sa-writer" and claims["cid"] == writer.username
    assert claims["token_use"] == "refresh" and claims["aud"] != SERVICE and "access" not in claims
    # Anonymous callers get no refresh token.
    anonymous = world.token(None, f"repository:{PUBLIC}/app:pull", offline_token="true")
    assert anonymous.status_code == 200 and "refresh_token" not in anonymous.json()


# -- POST /token (containerd) -----------------------------------------------------------------------------


def test_password_and_refresh_token_grants(iam_registry: IamRegistry) -> None:
    world = iam_registry
    writer = world.accounts["writer"]
    first = post_token(
        world,
        grant_type="password",
        username=writer.username,
        password=writer.password,
        scope=f"repository:{OWN}/app:pull repository:{OWN}/app:push",
        service=SERVICE,
        client_id="containerd-client",
        access_type="offline",
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["token"] == body["access_token"]
    assert access(body["token"]) == [repo_entry(f"{OWN}/app", "pull", "push")]
    refresh = body["refresh_token"]

    # The refresh token buys tokens for other scopes, decided on the principal's live bindings.
    again = post_token(
        world,
        grant_type="refresh_token",
        refresh_token=refresh,
        scope=f"repository:{OWN}/other:pull repository:{OTHER}/app:pull",
        service=SERVICE,
        client_id="containerd-client",
    )
    assert again.status_code == 200, again.text
    assert access(again.json()["token"]) == [repo_entry(f"{OWN}/other", "pull")]
    assert jwt_part(again.json()["token"], 1)["sub"] == "service-account:sa-writer"
    assert "refresh_token" not in again.json()
    offline = post_token(world, grant_type="refresh_token", refresh_token=refresh, access_type="offline")
    assert offline.status_code == 200 and offline.json()["refresh_token"]

    refused = {
        "wrong password": {"grant_type": "password", "username": writer.username, "password": "nope"},
        "unknown user": {"grant_type": "password", "username": "ghost-00000000", "password": writer.password},
        "access token as refresh token": {"grant_type": "refresh_token", "refresh_token": body["token"]},
        "garbage refresh token": {"grant_type": "refresh_token", "refresh_token": "x.y.z"},
        "no refresh token": {"grant_type": "refresh_token"},
    }
    for what, form in refused.items():
        r = post_token(world, **form)
        assert r.status_code == 401 and error_code(r) == "UNAUTHORIZED", (what, r.status_code, r.text)
    unsupported = post_token(world, grant_type="client_credentials", client_id="x")
    assert unsupported.status_code == 400 and error_code(unsupported) == "UNSUPPORTED"


def test_refresh_token_follows_live_bindings(iam_registry: IamRegistry) -> None:
    world = iam_registry
    account = world.new_account("sa-refresh", "puller", OTHER)
    form = {"grant_type": "password", "username": account.username, "password": account.password}
    refresh = post_token(world, **form, access_type="offline").json()["refresh_token"]
    scope = f"repository:{OTHER}/app:pull"
    assert access(post_token(world, grant_type="refresh_token", refresh_token=refresh, scope=scope).json()["token"])
    admin(world.proc, "revoke", "puller", "--namespace", OTHER, "--service-account", account.name)
    after = post_token(world, grant_type="refresh_token", refresh_token=refresh, scope=scope)
    assert after.status_code == 200 and access(after.json()["token"]) == []


# -- response, claims, JWKS -------------------------------------------------------------------------------


def test_token_response_fields(iam_registry: IamRegistry) -> None:
    world = iam_registry
    before = int(time.time())
    response = world.token(world.accounts["reader"].creds, f"repository:{OWN}/app:pull")
    after = int(time.time())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "no-store" in response.headers.get("cache-control", "")
    body = response.json()
    assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert body["token"] == body["access_token"]
    assert isinstance(body["expires_in"], int) and body["expires_in"] >= 60
    assert body["expires_in"] == 300  # the default lifetime
    assert RFC3339_UTC.match(body["issued_at"]), body["issued_at"]
    issued = datetime.fromisoformat(body["issued_at"].replace("Z", "+00:00"))
    assert before <= issued.timestamp() <= after
    claims = jwt_part(body["token"], 1)
    assert int(issued.timestamp()) == claims["iat"] and claims["exp"] - claims["iat"] == body["expires_in"]


def test_token_claims(iam_registry: IamRegistry) -> None:
    world = iam_registry
    writer = world.accounts["writer"]
    now = time.time()
    one = world.issue(writer.creds, f"repository:{OWN}/app:pull,push")
    two = world.issue(writer.creds, f"repository:{OWN}/app:pull,push")
    header = jwt_part(one, 0)
    assert header["alg"] == "ES256" and header["typ"] == "JWT" and header["kid"]
    claims = jwt_part(one, 1)
    assert {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"} <= set(claims)
    assert claims["iss"] == SERVICE and claims["aud"] == SERVICE
    assert claims["sub"] == "service-account:sa-writer"
    assert claims["cid"] == writer.username  # the credential, so revocation can be checked later
    assert abs(claims["iat"] - now) < 5 and claims["nbf"] == claims["iat"]
    assert claims["exp"] == claims["iat"] + 300
    assert re.fullmatch(r"[0-9a-f]{32}", claims["jti"]) and claims["jti"] != jwt_part(two, 1)["jti"]
    assert claims["access"] == [repo_entry(f"{OWN}/app", "pull", "push")]
    anonymous = jwt_part(world.issue(None, f"repository:{PUBLIC}/app:pull"), 1)
    assert anonymous["sub"] == "anonymous:" and "cid" not in anonymous


@pytest.mark.parametrize("path", ["/token/jwks.json", "/.well-known/jwks.json"])
def test_jwks_publishes_public_keys_only(iam_registry: IamRegistry, path: str) -> None:
    world = iam_registry
    response = world.http.get(f"{world.url}{path}")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    keys = response.json()["keys"]
    assert keys, response.text
    for key in keys:
        assert {"kty", "crv", "x", "y", "kid", "alg", "use"} <= set(key)
        assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256" and key["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key), "private key material published"
        canonical = json.dumps({k: key[k] for k in ("crv", "kty", "x", "y")}, sort_keys=True, separators=(",", ":"))
        thumbprint = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
        assert key["kid"] == thumbprint  # RFC 7638
    # A token the registry issues verifies with the published key of its kid (what an edge node does).
    token = world.issue(world.accounts["reader"].creds, f"repository:{OWN}/app:pull")
    published = {k["kid"]: k for k in keys}
    public = jwt.PyJWK(published[jwt_part(token, 0)["kid"]]).key
    claims = jwt.decode(token, public, algorithms=["ES256"], audience=SERVICE, issuer=SERVICE)
    assert claims["sub"] == "service-account:sa-reader"


def test_key_rotation_through_the_cli_keeps_issued_tokens_valid(iam_registry: IamRegistry) -> None:
    world = iam_registry
    reader = world.accounts["reader"].creds
    old = world.issue(reader, f"repository:{OWN}/app:pull")
    old_kid = jwt_part(old, 0)["kid"]

    rotated = cli(world.proc, "rotate-key")
    assert rotated["active_kid"] and rotated["active_kid"] != old_kid

    # Tokens signed before the rotation stay valid until they expire.
    r = world.http.get(f"{world.url}/v2/{OWN}/app/manifests/v1", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 200, r.text
    new = world.issue(reader, f"repository:{OWN}/app:pull")
    r = world.http.get(f"{world.url}/v2/{OWN}/app/manifests/v1", headers={"Authorization": f"Bearer {new}"})
    assert r.status_code == 200, r.text
    assert old_kid in [k["kid"] for k in world.http.get(f"{world.url}/token/jwks.json").json()["keys"]]


def test_key_rotation_through_the_cli_switches_the_signing_key(tmp_path: Path) -> None:
    with RegistryProcess(tmp_path / "data", "--auth", "token", env=CHEAP_ARGON2) as proc, httpx.Client() as http:
        old_kid = jwt_part(http.get(f"{proc.url}/token").json()["token"], 0)["kid"]
        new_kid = cli(proc, "rotate-key")["active_kid"]
        assert new_kid != old_kid
        kids = [k["kid"] for k in http.get(f"{proc.url}/token/jwks.json").json()["keys"]]
        token = http.get(f"{proc.url}/token").json()["token"]
        assert (jwt_part(token, 0)["kid"], kids) == (new_kid, [new_kid, old_kid])


# -- throttling, audit, secrets ---------------------------------------------------------------------------


@pytest.fixture
def throttled(tmp_path: Path) -> Iterator[RegistryProcess]:
    env = {
        **CHEAP_ARGON2,
        "REGISTRY__AUTH__FAILED_LOGIN_LIMIT": "3",  # per credential; five times that per source address
        "REGISTRY__AUTH__FAILED_LOGIN_WINDOW": "60",
        "REGISTRY__AUTH__TOKEN_LIFETIME": "120",
        "REGISTRY__LOG__LEVEL": "debug",
        "REGISTRY__LOG__ACCESS_LOG": "true",
    }
    with RegistryProcess(tmp_path / "data", "--auth", "token", env=env) as proc:
        yield proc


def test_failed_logins_are_rate_limited_per_credential_and_per_source(throttled: RegistryProcess) -> None:
    proc = throttled
    with httpx.Client(base_url=proc.url, timeout=30) as http:
        stored = json.loads((proc.data / "admin-credential.json").read_text())
        api = (stored["username"], stored["password"])
        assert http.post("/api/v1/namespaces", json={"name": "ns"}, auth=api).status_code == 201
        accounts = []
        for name in ("victim", "bystander"):
            created = http.post("/api/v1/service-accounts", json={"name": name}, auth=api).json()["credential"]
            accounts.append((created["username"], created["password"]))
            binding = {"role": "reader", "namespace": "ns", "subject_kind": "service-account", "subject_name": name}
            assert http.post("/api/v1/bindings", json=binding, auth=api).status_code == 201
        (victim, secret), bystander = accounts

        good = http.get("/token", params={"service": SERVICE}, auth=(victim, secret))
        assert good.status_code == 200 and good.json()["expires_in"] == 120  # REGISTRY__AUTH__TOKEN_LIFETIME
        token = good.json()["token"]

        # Per credential: the third failure within the window locks it.
        statuses = [http.get("/token", auth=(victim, f"wrong-{i}")).status_code for i in range(3)]
        assert statuses == [401, 401, 401]
        for what, response in {
            "GET /token, right secret": http.get("/token", auth=(victim, secret)),
            "GET /token, wrong secret": http.get("/token", auth=(victim, "wrong")),
            "POST /token": http.post("/token", data={"grant_type": "password", "username": victim, "password": secret}),
            "Basic on /v2": http.get("/v2/ns/app/tags/list", auth=(victim, secret)),
        }.items():
            assert response.status_code == 429, (what, response.status_code, response.text)
            assert error_code(response) == "TOOMANYREQUESTS", what
            assert 1 <= int(response.headers["retry-after"]) <= 60, (what, response.headers)
        # Tokens issued before the lockout still work, and other credentials are not locked.
        bearer = {"Authorization": f"Bearer {token}"}
        assert http.get("/v2/", headers=bearer).status_code == 200
        assert http.get("/token", auth=bystander).status_code == 200

        # Per source: five times the per-credential limit, over any usernames (3 failures so far).
        statuses = [http.get("/token", auth=(f"spray-{i}", "x")).status_code for i in range(12)]
        assert statuses == [401] * 12
        locked_out = http.get("/token", auth=bystander)
        assert locked_out.status_code == 429 and int(locked_out.headers["retry-after"]) >= 1
        assert http.get("/v2/ns/app/tags/list", auth=bystander).status_code == 429
        # Anonymous requests are not logins: still answered normally.
        assert http.get("/token", params={"service": SERVICE}).status_code == 200
        assert http.get("/v2/ns/app/tags/list").status_code == 401

    records = cli(proc, "audit", "--limit", "200")
    limited = [r for r in records if r["event"] == "auth.basic" and r["outcome"] == "rate_limited"]
    assert {r["credential"] for r in limited} >= {victim, bystander[0]}
    assert all(r["source"] == "127.0.0.1" for r in limited)
    log = proc.log_text()
    for value in (secret, bystander[1], api[1], token, token.split(".")[2]):
        assert value not in log
    for username, password in (accounts[0], accounts[1], api):
        assert base64.b64encode(f"{username}:{password}".encode()).decode() not in log


def test_failures_are_audited(iam_registry: IamRegistry) -> None:
    world = iam_registry
    reader = world.accounts["reader"]
    with world.client() as http:
        assert http.get(f"/v2/{OWN}/app/manifests/v1", auth=(reader.username, "wrong-secret")).status_code == 401
        assert world.token(("ghost-12345678", "whatever")).status_code == 401
        r = http.get(f"/v2/{OWN}/app/manifests/v1", headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401
        denied = http.delete(f"/v2/{OWN}/app/manifests/v1", auth=reader.creds)
        assert denied.status_code == 403
        issued = world.token(reader.creds, f"repository:{OWN}/app:pull,delete")
        jti = jwt_part(issued.json()["token"], 1)["jti"]

    records = cli(world.proc, "audit", "--limit", "50")
    assert records == sorted(records, key=lambda r: -int(r["id"]))  # newest first

    def find(event: str, outcome: str, **match: Any) -> dict[str, Any]:
        for record in records:
            detail = record["detail"]
            if (
                record["event"] == event
                and record["outcome"] == outcome
                and all(record.get(k) == v or detail.get(k) == v for k, v in match.items())
            ):
                return record  # type: ignore[no-any-return]
        raise AssertionError(f"no {event}/{outcome} {match} in {json.dumps(records, indent=1)[:4000]}")

    wrong = find("auth.basic", "failure", credential=reader.username, reason="wrong secret")
    assert wrong["source"] == "127.0.0.1" and wrong["actor"] == ""
    find("auth.basic", "failure", credential="ghost-12345678", reason="unknown credential")
    find("auth.token", "failure", reason="malformed")
    refused = find("authz.denied", "denied", actor="service-account:sa-reader", credential=reader.username)
    assert refused["detail"]["scope"] == f"repository:{OWN}/app:delete"
    issue = find("token.issue", "success", jti=jti)
    assert issue["actor"] == "service-account:sa-reader"
    assert issue["detail"]["requested"] == [f"repository:{OWN}/app:pull,delete"]
    assert issue["detail"]["granted"] == [f"repository:{OWN}/app:pull"]
    text = json.dumps(records)
    assert reader.password not in text and "wrong-secret" not in text


def test_admin_credential_file_is_private(iam_registry: IamRegistry) -> None:
    path = iam_registry.proc.data / "admin-credential.json"
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600, oct(mode)
    stored = json.loads(path.read_text())
    assert set(stored) == {"username", "password"}
    assert (
        iam_registry.http.get(
            f"{iam_registry.url}/api/v1/namespaces", auth=(stored["username"], stored["password"])
        ).status_code
        == 200
    )


def test_mount_challenge_names_the_source_scope(iam_registry: IamRegistry) -> None:
    world = iam_registry
    blob = world.content[OTHER].blob_digest
    path = f"/v2/{OWN}/dst/blobs/uploads/"
    both = f"repository:{OWN}/dst:pull,push repository:{OTHER}/app:pull"
    anonymous = world.http.post(f"{world.url}{path}", params={"mount": blob, "from": f"{OTHER}/app"})
    assert anonymous.status_code == 401
    challenge = parse_challenge(anonymous.headers["www-authenticate"])
    assert challenge["scope"] == both and challenge["realm"] == f"{world.url}/token" and "error" not in challenge
    # A token that lacks the destination: insufficient_scope, naming both again.
    token = world.issue(world.accounts["writer"].creds, f"repository:{OTHER}/app:pull")
    r = world.http.post(
        f"{world.url}{path}",
        params={"mount": blob, "from": f"{OTHER}/app"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 401
    assert parse_challenge(r.headers["www-authenticate"]) | {"realm": ""} == {
        "scheme": "Bearer",
        "realm": "",
        "service": SERVICE,
        "scope": both,
        "error": "insufficient_scope",
    }
    # Without ?mount= (or without from=) only the destination is named.
    for params in ({"from": f"{OTHER}/app"}, {"mount": blob}, {}):
        plain = world.http.post(f"{world.url}{path}", params=params)
        assert parse_challenge(plain.headers["www-authenticate"])["scope"] == f"repository:{OWN}/dst:pull,push"


def test_zz_no_secret_reaches_the_server_log(iam_registry: IamRegistry) -> None:
    """Runs last in the module: every password and token handed out so far (this module and the matrix when
    run together), their signatures and the Basic headers built from them, against the whole server log."""
    world = iam_registry
    extra = {"Authorization": "Basic " + base64.b64encode(b"probe:" + uuid.uuid4().hex.encode()).decode()}
    world.http.get(f"{world.url}/v2/", headers=extra)  # one more Basic header, certainly in the log's time span
    log = world.proc.log_text()
    assert "GET /v2/ " in log, "the access log is on: the check below would mean nothing otherwise"
    needles: set[str] = set()
    for value in world.secrets:
        needles.add(value)
        if value.count(".") == 2:  # a JWT: its signature alone must not appear either
            needles.add(value.split(".")[2])
    for account in (world.admin, *world.accounts.values()):
        needles.add(base64.b64encode(f"{account.username}:{account.password}".encode()).decode())
    needles.add(extra["Authorization"].split(" ", 1)[1])
    leaked = sorted(n[:12] + "…" for n in needles if n in log)
    assert not leaked, f"{len(leaked)} of {len(needles)} secrets found in the server log: {leaked}"
    assert len(needles) > 50, len(needles)
