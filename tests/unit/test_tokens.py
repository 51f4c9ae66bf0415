"""Unit tests for the token service: keys and JWKS, issuing, and verification (registry.tokens)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from registry.oci.scope import Scope, allowed_actions, parse_scopes
from registry.tokens.issuer import TokenIssuer, TokenSettings
from registry.tokens.keys import KeyRing, SigningKey, jwk_thumbprint, new_signing_key
from registry.tokens.verifier import (
    TokenError,
    public_key_from_jwk,
    public_keys_from_jwks,
    verify_access,
    verify_refresh,
)

NOW = 1_700_000_000.0
SETTINGS = TokenSettings(issuer="https://registry.test/token", service="registry.test", lifetime=300)
MAX = SETTINGS.max_lifetime


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict[str, Any]) -> str:
    return b64(json.dumps(value).encode())


def unb64json(segment: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return result


@pytest.fixture
def ring() -> KeyRing:
    ring = KeyRing.from_keys([])
    ring.rotate(NOW - 1000)
    return ring


@pytest.fixture
def issuer(ring: KeyRing) -> TokenIssuer:
    return TokenIssuer(ring, SETTINGS)


def lookup(ring: KeyRing, now: float = NOW) -> Any:
    return lambda kid: ring.public_key(kid, now, MAX)


def access(token: str, ring: KeyRing, now: float = NOW, **kw: Any) -> dict[str, Any]:
    return verify_access(token, lookup(ring, now), SETTINGS.issuer, SETTINGS.service, now, **kw)


def refresh(token: str, ring: KeyRing, now: float = NOW) -> dict[str, Any]:
    return verify_refresh(token, lookup(ring, now), SETTINGS.issuer, SETTINGS.service, now)


def reason(call: Any) -> str:
    with pytest.raises(TokenError) as info:
        call()
    return info.value.reason


# --- issuing and the happy path ---


def test_issue_and_verify_roundtrip(issuer: TokenIssuer, ring: KeyRing) -> None:
    scopes = parse_scopes(["repository:ns/app:pull,push", "repository:ns/other:", "registry:catalog:*"])
    token, claims = issuer.issue_access("alice", scopes, NOW, extra={"ver": 1})
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "kid": ring.active.kid, "typ": "JWT"}
    verified = access(token, ring)
    assert verified == claims
    assert verified["iss"] == SETTINGS.issuer
    assert verified["sub"] == "alice"
    assert verified["aud"] == SETTINGS.service
    assert verified["iat"] == verified["nbf"] == int(NOW)
    assert verified["exp"] == int(NOW) + 300
    assert verified["ver"] == 1
    assert len(verified["jti"]) == 32
    assert verified["access"] == [
        {"type": "repository", "name": "ns/app", "actions": ["pull", "push"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]
    assert allowed_actions(verified["access"], "repository", "ns/app") == {"pull", "push"}
    assert allowed_actions(verified["access"], "repository", "ns/other") == set()


def test_jti_is_unique(issuer: TokenIssuer) -> None:
    a = issuer.issue_access("alice", [], NOW)[1]["jti"]
    b = issuer.issue_access("alice", [], NOW)[1]["jti"]
    assert a != b


def test_settings_and_extra_validation(issuer: TokenIssuer) -> None:
    with pytest.raises(ValueError):
        TokenSettings(issuer="i", service="s", lifetime=59)
    with pytest.raises(ValueError):
        TokenSettings(issuer="i", service="s", lifetime=600, refresh_lifetime=300)
    with pytest.raises(ValueError):
        issuer.issue_access("alice", [], NOW, extra={"sub": "root"})
    with pytest.raises(ValueError):
        issuer.issue_access("alice", [], NOW, extra={"access": []})


def test_issuer_without_active_key_fails() -> None:
    with pytest.raises(LookupError):
        TokenIssuer(KeyRing.from_keys([]), SETTINGS).issue_access("alice", [], NOW)


# --- time ---


def test_expired_and_leeway(issuer: TokenIssuer, ring: KeyRing) -> None:
    token, claims = issuer.issue_access("alice", [], NOW)
    exp = claims["exp"]
    assert access(token, ring, now=exp + 4)["sub"] == "alice"  # within the 5s leeway
    assert reason(lambda: access(token, ring, now=exp + 5)) == "expired"
    assert reason(lambda: access(token, ring, now=exp + 1, leeway=0)) == "expired"


def test_not_yet_valid(issuer: TokenIssuer, ring: KeyRing) -> None:
    token, _ = issuer.issue_access("alice", [], NOW)
    assert access(token, ring, now=NOW - 5)["sub"] == "alice"
    assert reason(lambda: access(token, ring, now=NOW - 6)) == "not_yet_valid"


# --- claims that do not match ---


def test_wrong_audience_and_issuer(ring: KeyRing) -> None:
    other_service = TokenIssuer(ring, replace(SETTINGS, service="elsewhere.test"))
    token, _ = other_service.issue_access("alice", [], NOW)
    assert reason(lambda: access(token, ring)) == "wrong_audience"
    other_issuer = TokenIssuer(ring, replace(SETTINGS, issuer="https://evil.test"))
    token, _ = other_issuer.issue_access("alice", [], NOW)
    assert reason(lambda: access(token, ring)) == "wrong_issuer"


def test_missing_required_claim(ring: KeyRing) -> None:
    key = ring.active
    claims = {"iss": SETTINGS.issuer, "aud": SETTINGS.service, "exp": NOW + 60, "iat": NOW, "nbf": NOW}
    token = jwt.encode(claims, key.private_key(), algorithm="ES256", headers={"kid": key.kid})
    assert reason(lambda: access(token, ring)) == "malformed"


def test_garbage_is_malformed(ring: KeyRing) -> None:
    for token in ["", "abc", "a.b.c", "!!!.???.###"]:
        assert reason(lambda token=token: access(token, ring)) == "malformed"


# --- signatures, keys and algorithms ---


def test_tampered_payload(issuer: TokenIssuer, ring: KeyRing) -> None:
    token, claims = issuer.issue_access("alice", [Scope("repository", "ns/app", ("pull",))], NOW)
    header, _, signature = token.split(".")
    claims["access"][0]["actions"] = ["pull", "push", "delete"]
    forged = f"{header}.{b64json(claims)}.{signature}"
    assert reason(lambda: access(forged, ring)) == "bad_signature"


def test_other_key_with_same_kid(issuer: TokenIssuer, ring: KeyRing) -> None:
    impostor = new_signing_key(NOW)
    claims = issuer.issue_access("alice", [], NOW)[1]
    token = jwt.encode(claims, impostor.private_key(), algorithm="ES256", headers={"kid": ring.active.kid})
    assert reason(lambda: access(token, ring)) == "bad_signature"


def test_unknown_and_missing_kid(issuer: TokenIssuer, ring: KeyRing) -> None:
    stranger = new_signing_key(NOW)
    claims = issuer.issue_access("alice", [], NOW)[1]
    token = jwt.encode(claims, stranger.private_key(), algorithm="ES256", headers={"kid": stranger.kid})
    assert reason(lambda: access(token, ring)) == "unknown_key"
    token = jwt.encode(claims, ring.active.private_key(), algorithm="ES256")
    assert reason(lambda: access(token, ring)) == "malformed"


def test_alg_none_rejected(issuer: TokenIssuer, ring: KeyRing) -> None:
    claims = issuer.issue_access("alice", [Scope("repository", "ns/app", ("push",))], NOW)[1]
    for alg in ["none", "None", "NONE"]:
        header = b64json({"alg": alg, "typ": "JWT", "kid": ring.active.kid})
        for token in [f"{header}.{b64json(claims)}.", f"{header}.{b64json(claims)}.{b64(b'x')}"]:
            assert reason(lambda token=token: access(token, ring)) == "alg_not_allowed"


def test_hs256_key_confusion_rejected(issuer: TokenIssuer, ring: KeyRing) -> None:
    """HS256 'signed' with the public key (PEM or JWK JSON) as the HMAC secret must not verify."""
    claims = issuer.issue_access("alice", [Scope("repository", "ns/app", ("push",))], NOW)[1]
    public = ring.active.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    secrets = [pem, json.dumps(ring.active.public_jwk()).encode()]
    for alg, digest in [("HS256", hashlib.sha256), ("HS384", hashlib.sha384), ("RS256", hashlib.sha256)]:
        for secret in secrets:
            signing_input = f"{b64json({'alg': alg, 'typ': 'JWT', 'kid': ring.active.kid})}.{b64json(claims)}"
            signature = hmac.new(secret, signing_input.encode(), digest).digest()
            token = f"{signing_input}.{b64(signature)}"
            assert reason(lambda token=token: access(token, ring)) == "alg_not_allowed"


def test_verifier_never_passes_non_es256_to_key_lookup(ring: KeyRing) -> None:
    seen: list[str] = []
    header = b64json({"alg": "HS256", "kid": ring.active.kid})
    token = f"{header}.{b64json({'sub': 'x'})}.{b64(b'sig')}"
    with pytest.raises(TokenError):
        verify_access(token, lambda kid: seen.append(kid), SETTINGS.issuer, SETTINGS.service, NOW)
    assert seen == []


# --- refresh tokens ---


def test_refresh_roundtrip(issuer: TokenIssuer, ring: KeyRing) -> None:
    token = issuer.issue_refresh("alice", NOW, credential_id="cred-1")
    claims = refresh(token, ring, now=NOW + 86400 - 1)
    assert claims["sub"] == "alice"
    assert claims["cid"] == "cred-1"
    assert claims["token_use"] == "refresh"
    assert claims["aud"] == "registry.test#refresh"
    assert "access" not in claims
    assert reason(lambda: refresh(token, ring, now=NOW + 86400 + 5)) == "expired"


def test_refresh_token_is_not_an_access_token(issuer: TokenIssuer, ring: KeyRing) -> None:
    token = issuer.issue_refresh("alice", NOW, credential_id="cred-1")
    assert reason(lambda: access(token, ring)) == "not_an_access_token"


def test_access_token_is_not_a_refresh_token(issuer: TokenIssuer, ring: KeyRing) -> None:
    token, _ = issuer.issue_access("alice", [], NOW)
    assert reason(lambda: refresh(token, ring)) == "not_a_refresh_token"


def test_token_use_refresh_with_access_audience_rejected(ring: KeyRing) -> None:
    key = ring.active
    claims = {"iss": SETTINGS.issuer, "sub": "a", "aud": SETTINGS.service, "exp": NOW + 60, "iat": NOW, "nbf": NOW}
    token = jwt.encode(
        {**claims, "token_use": "refresh"}, key.private_key(), algorithm="ES256", headers={"kid": key.kid}
    )
    assert reason(lambda: access(token, ring)) == "not_an_access_token"
    assert reason(lambda: refresh(token, ring)) == "not_a_refresh_token"


# --- keys, rotation, JWKS ---


def test_rotation_keeps_old_key_published_for_max_lifetime(issuer: TokenIssuer, ring: KeyRing) -> None:
    old = ring.active
    old_token, _ = issuer.issue_access("alice", [], NOW)
    new = ring.rotate(NOW + 10)
    assert ring.active == new != old
    assert [k.kid for k in ring.keys] == [old.kid, new.kid]
    assert ring.keys[0].retired == NOW + 10
    new_token, _ = issuer.issue_access("alice", [], NOW + 10)
    assert jwt.get_unverified_header(new_token)["kid"] == new.kid

    # until the old token expires, both verify and both keys are published (active first)
    assert access(old_token, ring, now=NOW + 20)["sub"] == "alice"
    assert access(new_token, ring, now=NOW + 20)["sub"] == "alice"
    assert [k["kid"] for k in ring.jwks(NOW + 20, MAX)["keys"]] == [new.kid, old.kid]
    assert ring.prune(NOW + 20, MAX) == []

    # once max_token_lifetime has passed since retirement, the old key is gone everywhere
    later = NOW + 10 + MAX
    assert [k["kid"] for k in ring.jwks(later, MAX)["keys"]] == [new.kid]
    assert ring.public_key(old.kid, later, MAX) is None
    stale_lookup = lookup(ring, later)
    assert (
        reason(lambda: verify_access(old_token, stale_lookup, SETTINGS.issuer, SETTINGS.service, NOW)) == "unknown_key"
    )
    assert ring.prune(later, MAX) == [old.kid]
    assert [k.kid for k in ring.keys] == [new.kid]


def test_keyring_from_keys_roundtrip_and_duplicates(ring: KeyRing) -> None:
    ring.rotate(NOW)
    copy = KeyRing.from_keys(ring.keys)
    assert copy.keys == ring.keys
    assert copy.active == ring.active
    with pytest.raises(ValueError):
        KeyRing.from_keys([ring.active, ring.active])


def test_jwks_shape(ring: KeyRing) -> None:
    document = ring.jwks(NOW, MAX)
    assert list(document) == ["keys"]
    (jwk,) = document["keys"]
    assert jwk["kty"] == "EC"
    assert jwk["crv"] == "P-256"
    assert jwk["alg"] == "ES256"
    assert jwk["use"] == "sig"
    assert "d" not in jwk
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert len(base64.urlsafe_b64decode(jwk["x"] + "=")) == 32
    assert len(base64.urlsafe_b64decode(jwk["y"] + "=")) == 32
    # RFC 7638: SHA-256 over the lexicographically ordered required members, no whitespace
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    assert jwk["kid"] == b64(hashlib.sha256(canonical.encode()).digest())
    assert jwk["kid"] == ring.active.kid == jwk_thumbprint(ring.active.public_key())


def test_new_signing_key() -> None:
    key = new_signing_key(NOW)
    assert isinstance(key, SigningKey)
    assert key.retired is None and key.created == NOW
    assert key.private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert len(key.kid) == 43 and "=" not in key.kid


def test_public_key_from_jwk_verifies_token(issuer: TokenIssuer, ring: KeyRing) -> None:
    token, _ = issuer.issue_access("alice", [Scope("repository", "ns/app", ("pull",))], NOW)
    # what an edge does: fetch the JWKS document (as JSON), load keys, verify locally
    fetched = json.loads(json.dumps(ring.jwks(NOW, MAX)))
    keys = public_keys_from_jwks(fetched)
    claims = verify_access(token, keys.get, SETTINGS.issuer, SETTINGS.service, NOW)
    assert allowed_actions(claims["access"], "repository", "ns/app") == {"pull"}
    single = public_key_from_jwk(fetched["keys"][0])
    assert verify_access(token, lambda kid: single, SETTINGS.issuer, SETTINGS.service, NOW)["sub"] == "alice"


def test_public_key_from_jwk_rejects_private_and_foreign_keys(ring: KeyRing) -> None:
    jwk = ring.active.public_jwk()
    private = jwt.algorithms.ECAlgorithm.to_jwk(ring.active.private_key(), as_dict=True)
    with pytest.raises(ValueError):
        public_key_from_jwk(private)
    with pytest.raises(ValueError):
        public_key_from_jwk({**jwk, "alg": "HS256"})
    with pytest.raises(ValueError):
        public_key_from_jwk({"kty": "oct", "k": "c2VjcmV0"})
    with pytest.raises(ValueError):
        public_key_from_jwk({**jwk, "x": jwk["y"]})  # not a point on the curve
    assert public_keys_from_jwks({"keys": [private, {"kty": "oct"}, "junk"]}) == {}
    assert public_keys_from_jwks({}) == {}
