"""The edge's auth in process: settings validation, hosts.toml with a client header, bounded caches, and identity
decisions against an in-process token service. Auth mode: named per test (no servers run here)."""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from edge.authz import MAX_DECISIONS, Decision, EdgeAuthorizer, _remember
from edge.containerd import hosts_toml
from edge.metrics import EdgeMetrics
from edge.settings import SettingsError, load_settings
from edge.upstream import open_upstream
from edge.upstreamauth import pull_scope_for_path
from registry.oci import errors as e
from registry.oci.scope import parse_scopes
from registry.tokens.issuer import TokenIssuer, TokenSettings
from registry.tokens.keys import KeyRing


def test_auth_settings_are_validated(tmp_path: Path) -> None:
    """Modes: every mode's required keys."""
    base = {"upstream": "http://primary.test"}
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    with pytest.raises(SettingsError, match="auth_mode"):
        load_settings(None, {**base, "auth_mode": "trust-me"})
    with pytest.raises(SettingsError, match="identity"):
        load_settings(None, {**base, "auth_mode": "identity"})
    with pytest.raises(SettingsError, match="together"):
        load_settings(None, {**base, "identity_username": "edge"})
    with pytest.raises(SettingsError, match="together"):
        load_settings(None, {**base, "client_header_name": "X-Edge-Key"})
    with pytest.raises(SettingsError, match="not a readable file"):
        load_settings(None, {**base, "identity_username": "e", "identity_password_file": str(tmp_path / "none")})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SettingsError, match="empty"):
        load_settings(None, {**base, "client_header_name": "X-Edge-Key", "client_header_value_file": str(empty)})
    settings = load_settings(
        None, {**base, "auth_mode": "identity", "identity_username": "e", "identity_password_file": str(secret)}
    )
    assert settings.auth_mode == "identity"


def test_hosts_toml_carries_the_client_header() -> None:
    """Mode: identity with a client header (the text containerd reads)."""
    text = hosts_toml("https://registry.example", "http://edge:5001", header=("X-Edge-Key", 'va"lue'))
    doc = tomllib.loads(text)
    assert doc["host"]["http://edge:5001"]["header"] == {"X-Edge-Key": ['va"lue']}
    assert doc["host"]["http://edge:5001"]["capabilities"] == ["pull", "resolve"]
    assert "header" not in tomllib.loads(hosts_toml("https://r", "http://e"))["host"]["http://e"]


def test_the_decision_table_stays_bounded() -> None:
    """Modes: passthrough and identity (the decision cache)."""
    decisions: dict[str, Decision] = {}
    for i in range(MAX_DECISIONS):
        _remember(decisions, f"old{i}", Decision(True, None, 0.0, 1.0), horizon=0.0)
    _remember(decisions, "new", Decision(True, None, 5.0, 10.0), horizon=2.0)
    assert decisions == {"new": Decision(True, None, 5.0, 10.0)}, "expired entries were dropped first"


def test_pull_scope_for_path() -> None:
    """Mode: the edge's own upstream requests (pre-emptive tokens)."""
    assert pull_scope_for_path("/v2/team/app/blobs/sha256:ab") == "repository:team/app:pull"
    assert pull_scope_for_path("/v2/team/app/manifests/v1") == "repository:team/app:pull"
    assert pull_scope_for_path("/v2/") is None


class FakeTokenService:
    """The primary's /token and JWKS, in process (httpx.MockTransport): grants pull on ``team-a/*`` only."""

    def __init__(self) -> None:
        self.ring = KeyRing.from_keys([])
        self.ring.rotate(time.time() - 10)
        self.issuer = TokenIssuer(self.ring, TokenSettings("registry", "registry", lifetime=300))
        self.token_requests = 0
        self.down = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("primary down", request=request)
        if request.url.path == "/token/jwks.json":
            return httpx.Response(200, content=json.dumps(self.ring.jwks(time.time(), 3600)).encode())
        assert request.url.path == "/token" and request.headers["authorization"].startswith("Basic ")
        self.token_requests += 1
        scopes = parse_scopes(request.url.params.get_list("scope"))
        granted = [s for s in scopes if s.name.startswith("team-a/")]
        token, _ = self.issuer.issue_access("service-account:edge", granted, time.time())
        return httpx.Response(200, json={"token": token, "expires_in": 300})


async def test_identity_decisions_are_coalesced_cached_and_honoured_while_the_primary_is_down(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Mode: identity, against an in-process token service (MockClock drives the TTLs)."""
    service = FakeTokenService()
    secret = tmp_path / "secret"
    secret.write_text("pw")
    settings = load_settings(
        None,
        {
            "upstream": "http://primary.test",
            "auth_mode": "identity",
            "identity_username": "edge",
            "identity_password_file": str(secret),
            "token_realm": "http://primary.test/token",
            "token_service": "registry",
            "auth_cache_ttl": 30.0,
            "max_stale": 600.0,
        },
    )
    async with open_upstream(settings, EdgeMetrics(), transport=httpx.MockTransport(service.handler)) as upstream:
        authz = EdgeAuthorizer(settings, upstream)
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(authz.authorize, None, None, "team-a/app")
        assert service.token_requests == 1, "ten concurrent cold requests, one token exchange"
        assert len(authz.locks) == 0
        with pytest.raises(e.RegistryError) as denied:
            await authz.authorize(None, None, "team-b/app")
        assert denied.value.status == 403
        await trio.sleep(20)
        await authz.authorize(None, None, "team-a/app")
        assert service.token_requests == 2, "within the TTL: no new exchange"

        service.down = True
        await trio.sleep(60)  # past the TTL: the primary cannot be asked, the last decisions stand
        await authz.authorize(None, None, "team-a/app")
        with pytest.raises(e.RegistryError) as still_denied:
            await authz.authorize(None, None, "team-b/app")
        assert still_denied.value.status == 403
        await trio.sleep(600)  # past max_stale: no decision any more
        with pytest.raises(e.RegistryError) as unavailable:
            await authz.authorize(None, None, "team-a/app")
        assert unavailable.value.status == 503
        with pytest.raises(e.RegistryError) as never_asked:
            await authz.authorize(None, None, "team-a/never-asked")
        assert never_asked.value.status == 503
