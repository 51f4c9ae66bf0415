"""Pure parts of the edge's auth: settings validation, hosts.toml with a client header, bounded caches.
Auth mode: named per test (no servers run here)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from edge.authz import MAX_DECISIONS, Decision, _remember
from edge.containerd import hosts_toml
from edge.settings import SettingsError, load_settings
from edge.upstreamauth import pull_scope_for_path


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
