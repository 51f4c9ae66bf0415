"""The IAM decision matrix through an edge in passthrough mode (``--auth-mode passthrough``), cache hits
included, and token confusion at the edge.

The edge decides every request itself (edge/authz.py: the primary's JWTs checked locally against its JWKS;
Basic credentials exchanged at the primary's token service). Expectations are the primary matrix's own table
(``expect`` in test_access_matrix.py, written out by hand from the fixture's grants), so both tiers are held to
the same answers. The cache is warmed first by the admin: every pull the matrix makes of a manifest by digest
or a blob is then a cache hit, and a principal without pull must still be refused.

Each checked request (status, error code, challenge) is one decision; the count is printed at the end.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.ocihelpers import OCI_MANIFEST, digest
from tests.edge.edgeproc import EdgeProcess
from tests.iam.conftest import NAMESPACES, OWN, SERVICE, IamRegistry, error_code, jwt_part, parse_challenge
from tests.iam.test_access_matrix import ACCOUNTS, ANONYMOUS, ANY, FORGERIES, Expect, _forge, expect

pytestmark = pytest.mark.e2e
EDGE_OPS = ("pull_manifest", "pull_blob", "list_tags", "push_blob")
COUNTS: Counter[str] = Counter()


class EdgeDecisions:
    def __init__(self, family: str) -> None:
        self.family = family
        self.wrong: list[str] = []

    def response(self, what: str, response: httpx.Response, want: Expect) -> None:
        COUNTS[self.family] += 1
        got_error = parse_challenge(response.headers.get("www-authenticate", "")).get("error")
        ok = (
            response.status_code == want.status
            and (want.code is None or error_code(response) == want.code)
            and (want.error is ANY or got_error == want.error)
        )
        if not ok:
            self.wrong.append(
                f"{what}: want {want}, got {response.status_code} {error_code(response)} error={got_error} "
                f"{response.text[:160]}"
            )

    def done(self) -> None:
        assert not self.wrong, f"{len(self.wrong)} wrong decisions:\n" + "\n".join(self.wrong)


class EdgeWorld:
    def __init__(self, world: IamRegistry, edge: EdgeProcess) -> None:
        self.world = world
        self.edge = edge

    def client(self, creds: tuple[str, str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.edge.url, auth=creds, timeout=60)


@pytest.fixture(scope="module")
def edge_world(iam_registry: IamRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeWorld]:
    base: Path = tmp_path_factory.mktemp("edge-matrix")
    edge = EdgeProcess(base, iam_registry.url, "--auth-mode", "passthrough").start()
    try:
        world = EdgeWorld(iam_registry, edge)
        with world.client(iam_registry.admin.creds) as admin:  # warm the cache as an authorised client
            for ns in NAMESPACES:
                content = iam_registry.content[ns]
                for path in (
                    f"/v2/{ns}/app/manifests/{content.manifest_digest}",
                    f"/v2/{ns}/app/blobs/{digest(content.layer)}",
                    f"/v2/{ns}/app/blobs/{content.blob_digest}",
                ):
                    assert admin.get(path, headers={"Accept": OCI_MANIFEST}).status_code == 200, path
        yield world
    finally:
        edge.stop()


def _request(world: EdgeWorld, client: httpx.Client, op: str, ns: str, headers: dict[str, str]) -> httpx.Response:
    content = world.world.content[ns]
    repo = f"{ns}/app"
    if op == "pull_manifest":  # by digest: cached
        return client.get(
            f"/v2/{repo}/manifests/{content.manifest_digest}", headers={**headers, "Accept": OCI_MANIFEST}
        )
    if op == "pull_blob":  # cached
        return client.get(f"/v2/{repo}/blobs/{digest(content.layer)}", headers=headers)
    if op == "list_tags":
        return client.get(f"/v2/{repo}/tags/list", headers=headers)
    layer = f"pushed through the edge {uuid.uuid4()}".encode()
    return client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest(layer)}, content=layer, headers=headers)


def _scope(op: str, ns: str) -> str:
    return f"repository:{ns}/app:" + ("pull,push" if op == "push_blob" else "pull")


STYLES = [(p, s) for p in ACCOUNTS for s in ("bearer", "basic")] + [(ANONYMOUS, "none"), (ANONYMOUS, "bearer")]


@pytest.mark.parametrize(("principal", "style"), STYLES)
def test_operation_matrix_through_the_edge(edge_world: EdgeWorld, principal: str, style: str) -> None:
    world = edge_world.world
    decisions = EdgeDecisions("matrix")
    account = world.accounts.get(principal)
    creds = account.creds if account is not None else None
    hits_before = edge_world.edge.stats()["hits"]
    served_blobs = 0
    with edge_world.client(creds if style == "basic" else None) as client:
        for ns in NAMESPACES:
            for op in EDGE_OPS:
                want = expect(principal, style, ns, op)
                response = _request(edge_world, client, op, ns, {})
                if style == "bearer" and response.status_code == 401:
                    challenge = parse_challenge(response.headers["www-authenticate"])
                    assert challenge.get("realm") == f"{world.url}/token", challenge  # tokens come from the primary
                    assert challenge.get("service") == SERVICE and challenge.get("scope") == _scope(op, ns), challenge
                    issued = httpx.get(
                        challenge["realm"],
                        params={"service": SERVICE, "scope": challenge["scope"]},
                        auth=creds,
                        timeout=30,
                    )
                    assert issued.status_code == 200, issued.text
                    token = issued.json()["token"]
                    world.keep(token)
                    response = _request(edge_world, client, op, ns, {"Authorization": f"Bearer {token}"})
                decisions.response(f"{principal}/{style} {op} {ns}", response, want)
                if op == "pull_blob" and response.status_code == 200:
                    assert response.content == world.content[ns].layer
                    served_blobs += 1
                if op == "pull_manifest" and response.status_code == 200:
                    assert response.content == world.content[ns].manifest
    assert edge_world.edge.stats()["hits"] - hits_before >= served_blobs, "allowed blob pulls were cache hits"
    decisions.done()


def _bearer(world: EdgeWorld, token: str, path: str) -> httpx.Response:
    return httpx.get(f"{world.edge.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_a_token_for_one_namespace_is_refused_on_another_even_from_the_cache(edge_world: EdgeWorld) -> None:
    world = edge_world.world
    decisions = EdgeDecisions("confusion")
    maintainer = world.accounts["maintainer"].creds
    teamed = world.accounts["teamed"].creds
    tokens = {
        OWN: world.issue(maintainer, f"repository:{OWN}/app:pull"),
        "team-b": world.issue(teamed, "repository:team-b/app:pull"),
    }
    for token_ns, token in tokens.items():
        for ns in NAMESPACES:
            content = world.content[ns]
            for path in (
                f"/v2/{ns}/app/blobs/{digest(content.layer)}",
                f"/v2/{ns}/app/manifests/{content.manifest_digest}",
            ):
                want = Expect(200) if ns == token_ns else Expect(401, "UNAUTHORIZED", "insufficient_scope")
                decisions.response(f"token for {token_ns} on {path}", _bearer(edge_world, token, path), want)
    decisions.done()


@pytest.mark.parametrize("case", FORGERIES)
def test_forged_and_confused_tokens_are_refused_at_the_edge(edge_world: EdgeWorld, case: str) -> None:
    """Every forgery the primary refuses (another service's audience, a refresh token as an access token,
    foreign keys, alg none, expired…) is refused by the edge too — for cached content."""
    world = edge_world.world
    decisions = EdgeDecisions("forged")
    token = _forge(world, case)
    content = world.content[OWN]
    hits = edge_world.edge.stats()["hits"]
    for path in (f"/v2/{OWN}/app/blobs/{digest(content.layer)}", f"/v2/{OWN}/app/manifests/{content.manifest_digest}"):
        decisions.response(
            f"{case} {path}", _bearer(edge_world, token, path), Expect(401, "UNAUTHORIZED", "invalid_token")
        )
    assert edge_world.edge.stats()["hits"] == hits, "nothing was served from the cache"
    decisions.done()


def test_a_real_refresh_token_is_not_an_access_token_at_the_edge(edge_world: EdgeWorld) -> None:
    world = edge_world.world
    decisions = EdgeDecisions("forged")
    offline = world.token(world.accounts["writer"].creds, f"repository:{OWN}/app:pull", offline_token="true")
    refresh = offline.json()["refresh_token"]
    assert jwt_part(offline.json()["token"], 1)["access"], "the access token itself works"
    content = world.content[OWN]
    path = f"/v2/{OWN}/app/blobs/{digest(content.layer)}"
    decisions.response(
        "refresh token as Bearer", _bearer(edge_world, refresh, path), Expect(401, "UNAUTHORIZED", "invalid_token")
    )
    decisions.response("its access token", _bearer(edge_world, offline.json()["token"], path), Expect(200))
    decisions.done()


def test_zz_edge_decision_count() -> None:
    total = sum(COUNTS.values())
    print(f"\nedge access decisions checked: {total} {dict(COUNTS)}")
    assert total > 0
