"""Roles x operations x namespaces x auth style, every decision checked against an explicit table.

The expected permissions are written out here, not computed by the server's policy code:
role bound on team-a; nothing on team-b; pub is public (anonymous pull and tag listing).
"""

from __future__ import annotations

import hashlib
import uuid

import httpx
import pytest

from tests.authz.conftest import OTHER, OWN, PUBLIC, ROLES, World
from tests.tokenauth import DockerTokenAuth

PERMS_ON_OWN = {
    "puller": {"pull"},
    "reader": {"pull", "list"},
    "pusher": {"pull", "push"},
    "writer": {"pull", "push", "list"},
    "maintainer": {"pull", "push", "list", "delete"},
    "none": set(),
}


def perms(role: str, namespace: str) -> set[str]:
    if namespace == OWN:
        return PERMS_ON_OWN[role]
    if namespace == PUBLIC:
        return {"pull", "list"}
    return set()


def client_for(world: World, role: str, style: str) -> httpx.Client:
    username, password = world.accounts[role]
    auth: httpx.Auth = DockerTokenAuth(username, password) if style == "bearer" else httpx.BasicAuth(username, password)
    return httpx.Client(base_url=world.url, auth=auth, timeout=30)


def denied_status(style: str) -> int:
    # A token lacking access: 401 insufficient_scope (clients re-fetch tokens on 401).
    # Valid Basic credentials lacking the right: 403 DENIED.
    return 401 if style == "bearer" else 403


OPERATIONS = ("pull_manifest", "pull_blob", "push", "list_tags", "delete_tag", "delete_blob", "mount")
DECISIONS: list[int] = []


def run(world: World, client: httpx.Client, op: str, ns: str) -> httpx.Response:
    repo = f"{ns}/app"
    if op == "pull_manifest":
        return client.get(f"/v2/{repo}/manifests/v1")
    if op == "pull_blob":
        return client.get(f"/v2/{repo}/blobs/{world.blobs[ns]}")
    if op == "push":
        data = uuid.uuid4().bytes
        return client.post(
            f"/v2/{repo}/blobs/uploads/", params={"digest": "sha256:" + hashlib.sha256(data).hexdigest()}, content=data
        )
    if op == "list_tags":
        return client.get(f"/v2/{repo}/tags/list")
    if op == "delete_tag":
        return client.delete(f"/v2/{repo}/manifests/no-such-tag")
    if op == "delete_blob":
        return client.delete(f"/v2/{repo}/blobs/sha256:{'0' * 64}")
    raise AssertionError(op)


def expected(op: str, have: set[str], style: str) -> int:
    need = {
        "pull_manifest": {"pull"},
        "pull_blob": {"pull"},
        "push": {"push"},
        "list_tags": {"pull", "list"},
        "delete_tag": {"delete"},
        "delete_blob": {"delete"},
    }[op]
    if need <= have:
        return {
            "pull_manifest": 200,
            "pull_blob": 200,
            "push": 201,
            "list_tags": 200,
            "delete_tag": 404,
            "delete_blob": 404,
        }[op]
    if op == "list_tags" and "pull" in have:
        return 403  # may read, may not list: a token refresh cannot help, so DENIED in both styles
    return denied_status(style)


@pytest.mark.parametrize("style", ["bearer", "basic"])
@pytest.mark.parametrize("namespace", [OWN, OTHER, PUBLIC])
@pytest.mark.parametrize("role", ROLES)
def test_role_operation_matrix(world: World, role: str, namespace: str, style: str) -> None:
    have = perms(role, namespace)
    with client_for(world, role, style) as client:
        for op in ("pull_manifest", "pull_blob", "push", "list_tags", "delete_tag", "delete_blob"):
            response = run(world, client, op, namespace)
            want = expected(op, have, style)
            assert response.status_code == want, (role, namespace, style, op, response.status_code, response.text)
            if want in (401, 403):
                code = response.json()["errors"][0]["code"]
                assert code == ("UNAUTHORIZED" if want == 401 else "DENIED"), (op, code)
            DECISIONS.append(1)


@pytest.mark.parametrize("style", ["bearer", "basic"])
@pytest.mark.parametrize("role", ROLES)
def test_catalog_shows_only_listable_namespaces(world: World, role: str, style: str) -> None:
    with client_for(world, role, style) as client:
        response = client.get("/v2/_catalog")
        assert response.status_code == 200, response.text
        visible = {name.split("/")[0] for name in response.json()["repositories"]}
        want = {ns for ns in (OWN, OTHER, PUBLIC) if "list" in perms(role, ns)}
        assert visible == want, (role, style, visible)
        DECISIONS.append(1)


@pytest.mark.parametrize("style", ["bearer", "basic"])
@pytest.mark.parametrize("source_ns", [OWN, OTHER, PUBLIC])
@pytest.mark.parametrize("role", ROLES)
def test_cross_repository_mount_needs_pull_on_the_source(world: World, role: str, source_ns: str, style: str) -> None:
    target = f"{OWN}/mount-{uuid.uuid4().hex[:8]}"
    with client_for(world, role, style) as client:
        response = client.post(
            f"/v2/{target}/blobs/uploads/", params={"mount": world.blobs[source_ns], "from": f"{source_ns}/app"}
        )
    if "push" not in perms(role, OWN):
        assert response.status_code == denied_status(style), (role, source_ns, style, response.text)
    elif "pull" in perms(role, source_ns):
        assert response.status_code == 201, (role, source_ns, style, response.text)
    else:  # may push here but not read the source: an ordinary upload session, never a mount
        assert response.status_code == 202 and "/blobs/uploads/" in response.headers["location"]
    DECISIONS.append(1)


def test_anonymous(world: World) -> None:
    with httpx.Client(base_url=world.url, auth=DockerTokenAuth(None, None), timeout=30) as client:
        for ns in (OWN, OTHER, PUBLIC):
            pull = client.get(f"/v2/{ns}/app/manifests/v1")
            tags = client.get(f"/v2/{ns}/app/tags/list")
            push = client.post(f"/v2/{ns}/app/blobs/uploads/")
            if ns == PUBLIC:
                assert pull.status_code == 200 and tags.status_code == 200
            else:
                assert pull.status_code == 401 and tags.status_code == 401
            assert push.status_code == 401
            DECISIONS.extend([1, 1, 1])
        assert client.get("/v2/_catalog").status_code == 401
        challenge = httpx.get(f"{world.url}/v2/").headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="') and 'service="registry"' in challenge
        DECISIONS.extend([1, 1])


def test_single_component_and_unknown_namespaces(world: World) -> None:
    with httpx.Client(base_url=world.url, auth=world.admin, timeout=30) as client:
        flat = client.post("/v2/flat/blobs/uploads/")
        assert flat.status_code == 400 and flat.json()["errors"][0]["code"] == "NAME_INVALID"
        assert "<namespace>/<name>" in flat.json()["errors"][0]["message"]
        missing = client.post("/v2/nowhere/app/blobs/uploads/")
        assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "NAME_UNKNOWN"
        DECISIONS.extend([1, 1])


def test_zz_decision_count() -> None:
    """Runs last in this module: every decision above was checked (6 ops x 3 ns x 6 roles x 2 styles, …)."""
    assert len(DECISIONS) == 216 + 12 + 36 + 11 + 2, len(DECISIONS)
    print(f"access decisions checked: {len(DECISIONS)}")
