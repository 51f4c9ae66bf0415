"""Verifying registry tokens (pure: no I/O, ``now`` is an argument); used by the registry and by edge nodes.

It lives in ``registry.oci`` (the only part of ``registry`` that ``edge`` may import) so an edge node verifies
the primary's tokens locally with exactly the registry's rules; ``registry.tokens`` re-exports it.

Only ES256 is accepted, decided from the header before any key is touched, so ``alg: none`` and the
HS256-keyed-with-the-public-key confusion never reach a verifier. Time claims are checked here against
``now`` (PyJWT's own wall-clock checks are switched off) so callers and tests control time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePublicKey
from jwt.algorithms import ECAlgorithm

ALGORITHM = "ES256"
REFRESH_TOKEN_USE = "refresh"  # noqa: S105 (a claim value, not a secret)
_REQUIRED = ["exp", "iat", "nbf", "sub", "aud", "iss"]


def refresh_audience(service: str) -> str:
    """The audience of refresh tokens, distinct from access tokens' so neither can stand in for the other."""
    return f"{service}#refresh"


class TokenError(Exception):
    """A token was refused. ``reason`` is one of: malformed, alg_not_allowed, unknown_key, bad_signature,
    wrong_audience, wrong_issuer, expired, not_yet_valid, not_an_access_token, not_a_refresh_token."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def _numeric(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError("malformed", f"claim {name!r} must be a number")
    return float(value)


def _decode(
    token: str,
    public_key_for_kid: Callable[[str], Any | None],
    issuer: str,
    audiences: list[str],
    now: float,
    leeway: float,
) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError("malformed", str(exc)) from exc
    if header.get("alg") != ALGORITHM:
        raise TokenError("alg_not_allowed", f"alg {header.get('alg')!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenError("malformed", "header has no kid")
    key = public_key_for_kid(kid)
    if key is None:
        raise TokenError("unknown_key", f"kid {kid!r}")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audiences,
            issuer=issuer,
            options={"require": _REQUIRED, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidSignatureError as exc:
        raise TokenError("bad_signature") from exc
    except jwt.InvalidAudienceError as exc:
        raise TokenError("wrong_audience", str(exc)) from exc
    except jwt.InvalidIssuerError as exc:
        raise TokenError("wrong_issuer", str(exc)) from exc
    except jwt.InvalidAlgorithmError as exc:
        raise TokenError("alg_not_allowed", str(exc)) from exc
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise TokenError("malformed", str(exc)) from exc
    if _numeric(claims, "exp") <= now - leeway:
        raise TokenError("expired")
    if _numeric(claims, "nbf") > now + leeway or _numeric(claims, "iat") > now + leeway:
        raise TokenError("not_yet_valid")
    return claims


def _audiences(claims: dict[str, Any]) -> list[Any]:
    aud = claims.get("aud")
    return aud if isinstance(aud, list) else [aud]


def verify_access(
    token: str,
    public_key_for_kid: Callable[[str], Any | None],
    issuer: str,
    service: str,
    now: float,
    leeway: float = 5.0,
) -> dict[str, Any]:
    """Verify an access token and return its claims (``access`` holds the granted scopes).

    ``public_key_for_kid`` returns the verification key for a kid, or None if unknown.
    Raises TokenError (see its ``reason``).
    """
    claims = _decode(token, public_key_for_kid, issuer, [service, refresh_audience(service)], now, leeway)
    if claims.get("token_use") == REFRESH_TOKEN_USE or service not in _audiences(claims):
        raise TokenError("not_an_access_token")
    return claims


def verify_refresh(
    token: str,
    public_key_for_kid: Callable[[str], Any | None],
    issuer: str,
    service: str,
    now: float,
    leeway: float = 5.0,
) -> dict[str, Any]:
    """Verify a refresh token and return its claims (``sub``, ``cid``). Raises TokenError."""
    claims = _decode(token, public_key_for_kid, issuer, [service, refresh_audience(service)], now, leeway)
    if claims.get("token_use") != REFRESH_TOKEN_USE or refresh_audience(service) not in _audiences(claims):
        raise TokenError("not_a_refresh_token")
    return claims


def public_key_from_jwk(jwk: dict[str, Any]) -> EllipticCurvePublicKey:
    """Load an EC P-256 public JWK (as published in the JWKS). Raises ValueError for anything else."""
    if "d" in jwk:
        raise ValueError("JWK contains private key material")
    if jwk.get("alg", ALGORITHM) != ALGORITHM or jwk.get("use", "sig") != "sig":
        raise ValueError(f"JWK is not an {ALGORITHM} signing key")
    try:
        key = ECAlgorithm.from_jwk(jwk)
    except jwt.PyJWTError as exc:
        raise ValueError(f"invalid JWK: {exc}") from exc
    if not isinstance(key, EllipticCurvePublicKey) or not isinstance(key.curve, SECP256R1):
        raise ValueError("JWK is not an EC P-256 public key")
    return key


def public_keys_from_jwks(jwks: dict[str, Any]) -> dict[str, EllipticCurvePublicKey]:
    """kid → key for every usable key in a JWK Set document; unusable entries are skipped."""
    keys: dict[str, EllipticCurvePublicKey] = {}
    entries = jwks.get("keys")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("kid"), str):
            try:
                keys[entry["kid"]] = public_key_from_jwk(entry)
            except ValueError:
                continue
    return keys
