"""The edge's upstream auth: the Bearer challenge flow against a real primary with auth on, cross-host
redirects (a blob store we cannot run here: httpx.MockTransport), Docker Hub names, and local token checks."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from edge.authz import EdgeAuthorizer
from edge.metrics import EdgeMetrics
from edge.settings import DOCKER_HUB_API, load_settings
from edge.upstream import docker_hub_path, open_upstream
from registry.oci import errors as e
from registry.oci.scope import Scope, parse_challenge
from registry.tokens.issuer import TokenIssuer, TokenSettings
from registry.tokens.keys import KeyRing
from tests.edge.authprimary import AuthPrimary, auth_primary  # noqa: F401 - the fixture
from tests.imagebuild import OCI_MANIFEST, build_image


class CountingTransport(httpx.AsyncHTTPTransport):
    """A real transport that counts the requests to the token service."""

    token_requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            CountingTransport.token_requests += 1
        return await super().handle_async_request(request)


async def test_the_token_flow_against_the_primary_caches_tokens_per_scope(
    auth_primary: AuthPrimary,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    """Mode: the edge's own upstream requests, with the edge-node identity (and anonymous for a public repo)."""
    image = build_image(tmp_path / "layout", text="flow\n", tag="v1")
    auth_primary.push_image("team-a/flow", image, "v1")
    auth_primary.push_image("team-b/flow", image, "v1")
    auth_primary.push_image("public/flow", image, "v1")
    secret = tmp_path / "edge-password"
    secret.write_text(auth_primary.edge_node.password + "\n")
    settings = load_settings(
        None,
        {
            "upstream": auth_primary.url,
            "identity_username": auth_primary.edge_node.username,
            "identity_password_file": str(secret),
        },
    )
    async with open_upstream(settings, EdgeMetrics(), transport=CountingTransport()) as upstream:
        before = CountingTransport.token_requests
        first = await upstream.request("GET", "/v2/team-a/flow/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert first.status == 200 and first.content == image.manifest
        assert CountingTransport.token_requests == before + 1, "one challenge, one token"
        again = await upstream.request("GET", f"/v2/team-a/flow/blobs/{image.config_digest}")
        assert again.status == 200 and again.content == image.config
        assert CountingTransport.token_requests == before + 1, "the cached token was sent pre-emptively"
        refused = await upstream.request("GET", "/v2/team-b/flow/manifests/v1")
        assert refused.status == 401, "the identity has no pull on team-b"

    settings = load_settings(None, {"upstream": auth_primary.url})
    async with open_upstream(settings, EdgeMetrics()) as upstream:
        public = await upstream.request("GET", "/v2/public/flow/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert public.status == 200, "an anonymous token pulls a public namespace"
        assert (await upstream.request("GET", "/v2/team-a/flow/manifests/v1")).status == 401


async def test_a_cross_host_redirect_drops_authorization_and_docker_hub_names_get_library(
    tmp_path: Path,
) -> None:
    """Mode: the edge's own upstream requests with configured credentials against a Docker Hub-like upstream
    whose blobs redirect to another host (both played by httpx.MockTransport: neither can run here)."""
    seen: list[tuple[str, str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.url.path, request.headers.get("authorization")))
        if request.url.host == "auth.docker.io":
            assert request.headers["authorization"].startswith("Basic ")
            assert request.url.params["scope"] == "repository:library/alpine:pull"
            return httpx.Response(200, json={"token": "hub-token", "expires_in": 300})
        if request.url.host == "storage.example":
            return httpx.Response(200, content=b"layer bytes")
        assert request.url.host == "registry-1.docker.io"
        if request.headers.get("authorization") != "Bearer hub-token":
            challenge = (
                'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                'scope="repository:library/alpine:pull"'
            )
            return httpx.Response(401, headers={"WWW-Authenticate": challenge}, json={"errors": []})
        return httpx.Response(307, headers={"Location": "https://storage.example/blob?sig=1"})

    secret = tmp_path / "hub-password"
    secret.write_text("hub-secret")
    settings = load_settings(
        None, {"upstream": "https://docker.io", "identity_username": "me", "identity_password_file": str(secret)}
    )
    assert settings.upstream_url == DOCKER_HUB_API and "docker.io" in settings.names()
    async with open_upstream(settings, EdgeMetrics(), transport=httpx.MockTransport(handler)) as upstream:
        reply = await upstream.request("GET", "/v2/alpine/blobs/sha256:" + "a" * 64)
    assert reply.status == 200 and reply.content == b"layer bytes"
    hosts = [(host, path, auth) for host, path, auth in seen]
    assert hosts[0] == ("registry-1.docker.io", f"/v2/library/alpine/blobs/sha256:{'a' * 64}", None)
    assert hosts[1][0] == "auth.docker.io"
    assert hosts[2][0] == "registry-1.docker.io" and hosts[2][2] == "Bearer hub-token"
    assert hosts[3] == ("storage.example", "/blob", None), "the token never reaches the blob store"


def test_docker_hub_paths_and_challenges_parse() -> None:
    """Mode: none (pure functions)."""
    assert docker_hub_path("/v2/alpine/manifests/latest") == "/v2/library/alpine/manifests/latest"
    assert docker_hub_path("/v2/org/app/manifests/latest") == "/v2/org/app/manifests/latest"
    assert docker_hub_path("/v2/") == "/v2/"
    scheme, params = parse_challenge('Bearer realm="https://r/token",service="reg",scope="repository:a/b:pull,push"')
    assert scheme == "bearer"
    assert params == {"realm": "https://r/token", "service": "reg", "scope": "repository:a/b:pull,push"}
    assert parse_challenge("") == ("", {})


async def test_expired_and_wrong_audience_tokens_are_refused_locally(tmp_path: Path) -> None:
    """Mode: passthrough; the primary's JWKS is served by httpx.MockTransport so tokens can be issued in the
    past (an expired token from the real primary would take a minute to make)."""
    now = time.time()
    ring = KeyRing.from_keys([])
    ring.rotate(now - 5000)
    jwks_fetches: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/token/jwks.json"
        jwks_fetches.append(request.url.path)
        return httpx.Response(200, content=json.dumps(ring.jwks(now, 3600)).encode())

    settings = load_settings(
        None,
        {
            "upstream": "http://primary.test",
            "auth_mode": "passthrough",
            "token_realm": "http://primary.test/token",
            "token_service": "registry",
        },
    )
    scope = [Scope("repository", "team-a/app", ("pull",))]
    old = TokenIssuer(ring, TokenSettings("registry", "registry", lifetime=300)).issue_access("x", scope, now - 4000)
    other = TokenIssuer(ring, TokenSettings("registry", "elsewhere", lifetime=300)).issue_access("x", scope, now)
    good = TokenIssuer(ring, TokenSettings("registry", "registry", lifetime=300)).issue_access("x", scope, now)
    async with open_upstream(settings, EdgeMetrics(), transport=httpx.MockTransport(handler)) as upstream:
        authz = EdgeAuthorizer(settings, upstream)
        assert await authz.authorize(f"Bearer {good[0]}", None, "team-a/app") == f"Bearer {good[0]}"
        for token in (old[0], other[0]):
            with pytest.raises(e.RegistryError) as refused:
                await authz.authorize(f"Bearer {token}", None, "team-a/app")
            assert refused.value.status == 401
            assert 'error="invalid_token"' in refused.value.headers["WWW-Authenticate"]
        with pytest.raises(e.RegistryError) as other_repo:
            await authz.authorize(f"Bearer {good[0]}", None, "team-b/app")
        assert 'error="insufficient_scope"' in other_repo.value.headers["WWW-Authenticate"]
    assert jwks_fetches == ["/token/jwks.json"], "the JWKS is cached"
