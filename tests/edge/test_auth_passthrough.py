"""Passthrough mode (``--auth-mode passthrough``) against a real primary with auth on: clients bring the
primary's Bearer tokens or Basic credentials; the edge decides every request locally, cache hits included."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.edge.authprimary import AuthPrimary, auth_primary  # noqa: F401 - the fixture
from tests.edge.conftest import EdgeFactory
from tests.edge.edgeproc import EdgeProcess
from tests.imagebuild import build_image
from tests.tokenauth import DockerTokenAuth

pytestmark = pytest.mark.e2e


def _errors(response: httpx.Response) -> list[str]:
    return [err["code"] for err in response.json()["errors"]]


def _foreign_token(primary_token: str) -> str:
    """The claims of a real token (same kid, issuer, audience, access), signed by a key the primary never had."""
    claims = jwt.decode(primary_token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(primary_token)["kid"]
    return jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": kid})


def _settled(edge: EdgeProcess) -> dict[str, Any]:
    """The edge's counters once no fill is in flight (a client may get its last byte just before the commit)."""
    deadline = time.monotonic() + 60
    while (stats := edge.stats())["fills_in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stats["fills_in_flight"] == 0
    return stats


def _passthrough_edge(make_edge: EdgeFactory, primary: AuthPrimary) -> EdgeProcess:
    return make_edge(primary.url, "--auth-mode", "passthrough")


def test_a_token_without_pull_is_refused_at_the_edge_even_when_the_blob_is_cached(
    auth_primary: AuthPrimary,  # noqa: F811 - the imported fixture
    make_edge: EdgeFactory,
    tmp_path: Path,
) -> None:
    """Mode: passthrough. A reader's token fills the cache; other tokens, anonymous requests, a token signed by
    a foreign key and a tampered token are refused for the cached manifest and blob, without upstream traffic."""
    image = build_image(tmp_path / "layout", text="private bytes\n", tag="v1")
    repo = "team-a/app"
    auth_primary.push_image(repo, image, "v1")
    edge = _passthrough_edge(make_edge, auth_primary)
    blob = f"/v2/{repo}/blobs/{image.layer_digests[0]}"
    manifest = f"/v2/{repo}/manifests/{image.manifest_digest}"

    anonymous = httpx.get(f"{edge.url}{blob}", timeout=30)
    assert anonymous.status_code == 401
    assert _errors(anonymous) == ["UNAUTHORIZED"]
    challenge = anonymous.headers["www-authenticate"]
    assert challenge.startswith(f'Bearer realm="{auth_primary.url}/token"'), "clients go to the primary's tokens"
    assert f'scope="repository:{repo}:pull"' in challenge and 'service="registry"' in challenge

    reader = DockerTokenAuth(auth_primary.reader.username, auth_primary.reader.password)
    with httpx.Client(base_url=edge.url, auth=reader, timeout=60) as client:
        for path in (manifest, blob, blob):
            response = client.get(path)
            assert response.status_code == 200, response.text
        assert client.get(f"/v2/{repo}/manifests/v1").content == image.manifest
        tags = client.get(f"/v2/{repo}/tags/list")  # the primary also wants "list", which reader lacks
        assert tags.status_code == 403 and _errors(tags) == ["DENIED"], "the primary decided on the reader's token"
    assert httpx.get(f"{edge.url}/v2/{repo}/tags/list", timeout=30).status_code == 401
    cached = _settled(edge)
    assert cached["fills"] >= 1 and cached["fill_failures"] == 0, "the blob is in the cache"

    other_repo_token = auth_primary.token(auth_primary.builder, "repository:team-b/app:pull")
    reader_token = auth_primary.token(auth_primary.reader, f"repository:{repo}:pull")
    tampered = reader_token[:-4] + ("AAAA" if not reader_token.endswith("AAAA") else "BBBB")
    refusals = {
        "token for another repository": (f"Bearer {other_repo_token}", "insufficient_scope"),
        "token signed by a foreign key": (f"Bearer {_foreign_token(reader_token)}", "invalid_token"),
        "tampered token": (f"Bearer {tampered}", "invalid_token"),
        "anonymous": (None, None),
    }
    for case, (authorization, error) in refusals.items():
        headers = {"Authorization": authorization} if authorization else {}
        for path in (blob, manifest):
            for method in ("GET", "HEAD"):
                response = httpx.request(method, f"{edge.url}{path}", headers=headers, timeout=30)
                assert response.status_code == 401, (case, method, path, response.status_code)
                if method == "GET":
                    assert _errors(response) == ["UNAUTHORIZED"], case
                challenge = response.headers["www-authenticate"]
                assert f'scope="repository:{repo}:pull"' in challenge, case
                if error:
                    assert f'error="{error}"' in challenge, case
                else:
                    assert "error=" not in challenge, case
    after = edge.stats()
    assert after["hits"] == cached["hits"] and after["manifest_hits"] == cached["manifest_hits"], "nothing served"
    assert after["upstream_requests"] == cached["upstream_requests"], "refused at the edge, not upstream"

    # the reader's own token still works on the cached blob, straight from the cache
    response = httpx.get(f"{edge.url}{blob}", headers={"Authorization": f"Bearer {reader_token}"}, timeout=30)
    assert response.status_code == 200 and response.content == image.layers[0]
    assert edge.stats()["hits"] == cached["hits"] + 1


def test_basic_credentials_pass_through_and_a_wrong_password_is_refused(
    auth_primary: AuthPrimary,  # noqa: F811 - the imported fixture
    make_edge: EdgeFactory,
    tmp_path: Path,
) -> None:
    """Mode: passthrough with Basic credentials: exchanged at the primary's token service, decision cached."""
    image = build_image(tmp_path / "layout", text="basic bytes\n", tag="v1")
    auth_primary.push_image("team-a/basic", image, "v1")
    auth_primary.push_image("team-b/basic", image, "v1")
    edge = _passthrough_edge(make_edge, auth_primary)
    reader = auth_primary.reader
    good = httpx.BasicAuth(reader.username, reader.password)

    with httpx.Client(base_url=edge.url, timeout=60) as client:
        assert client.get("/v2/", auth=good).status_code == 200
        response = client.get("/v2/team-a/basic/manifests/v1", auth=good)
        assert response.status_code == 200 and response.content == image.manifest
        layer = client.get(f"/v2/team-a/basic/blobs/{image.layer_digests[0]}", auth=good)
        assert layer.status_code == 200 and layer.content == image.layers[0]

        wrong = client.get("/v2/team-a/basic/manifests/v1", auth=httpx.BasicAuth(reader.username, "wrong-password"))
        assert wrong.status_code == 401 and _errors(wrong) == ["UNAUTHORIZED"]
        assert wrong.headers["www-authenticate"].startswith("Bearer realm=")
        cached_layer = client.get(
            f"/v2/team-a/basic/blobs/{image.layer_digests[0]}", auth=httpx.BasicAuth(reader.username, "nope")
        )
        assert cached_layer.status_code == 401, "a cached blob needs the right password too"

        denied = client.get("/v2/team-b/basic/manifests/v1", auth=good)
        assert denied.status_code == 403 and _errors(denied) == ["DENIED"]
        unknown_user = client.get("/v2/team-a/basic/manifests/v1", auth=httpx.BasicAuth("nobody", "x"))
        assert unknown_user.status_code == 401

    log = edge.log_text()
    assert reader.password not in log, "secrets are never logged"


def test_anonymous_pulls_of_a_public_namespace_pass(
    auth_primary: AuthPrimary,  # noqa: F811 - the imported fixture
    make_edge: EdgeFactory,
    tmp_path: Path,
) -> None:
    """Mode: passthrough, anonymous client: the primary's policy (a public namespace) decides."""
    image = build_image(tmp_path / "layout", text="public bytes\n", tag="v1")
    auth_primary.push_image("public/app", image, "v1")
    edge = _passthrough_edge(make_edge, auth_primary)
    response = httpx.get(f"{edge.url}/v2/public/app/manifests/v1", timeout=30)
    assert response.status_code == 200 and response.content == image.manifest
    blob = httpx.get(f"{edge.url}/v2/public/app/blobs/{image.config_digest}", timeout=30)
    assert blob.status_code == 200 and blob.content == image.config
    assert httpx.get(f"{edge.url}/v2/team-a/app/manifests/v1", timeout=30).status_code == 401
