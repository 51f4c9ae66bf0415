"""Issuing Docker registry tokens (JWT, ES256) signed by the key ring's active key.

Pure apart from randomness (key generation, ``jti``): no I/O, ``now`` is an argument. Authorization — which
scopes a subject is granted — is decided by the caller; the issuer signs what it is given.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from registry.oci.scope import Scope, access_claims
from registry.oci.tokens import ALGORITHM, REFRESH_TOKEN_USE, refresh_audience
from registry.tokens.keys import KeyRing, SigningKey

MIN_LIFETIME = 60
RESERVED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access", "token_use"})


@dataclass(frozen=True)
class TokenSettings:
    """Lifetimes are in seconds. Raises ValueError if ``lifetime < 60`` or ``refresh_lifetime < lifetime``."""

    issuer: str
    service: str
    lifetime: int = 300
    refresh_lifetime: int = 86400

    def __post_init__(self) -> None:
        if not self.issuer or not self.service:
            raise ValueError("token issuer and service must be non-empty")
        if self.lifetime < MIN_LIFETIME:
            raise ValueError(f"token lifetime must be at least {MIN_LIFETIME}s; got {self.lifetime}")
        if self.refresh_lifetime < self.lifetime:
            raise ValueError("refresh token lifetime must not be shorter than the access token lifetime")

    @property
    def max_lifetime(self) -> int:
        """The longest lifetime of any token the keys sign: how long a retired key must stay published."""
        return max(self.lifetime, self.refresh_lifetime)


class TokenIssuer:
    """Signs access and refresh tokens with ``keyring.active``; raises LookupError if the ring has no active key."""

    def __init__(self, keyring: KeyRing, settings: TokenSettings) -> None:
        self.keyring = keyring
        self.settings = settings

    def _sign(self, key: SigningKey, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, key.private_key(), algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "JWT"})

    def _base_claims(self, subject: str, audience: str, now: float, lifetime: int) -> dict[str, Any]:
        issued = math.floor(now)
        return {
            "iss": self.settings.issuer,
            "sub": subject,
            "aud": audience,
            "exp": issued + lifetime,
            "nbf": issued,
            "iat": issued,
            "jti": secrets.token_hex(16),
        }

    def issue_access(
        self, subject: str, scopes: Sequence[Scope], now: float, extra: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """An access token granting ``scopes`` (scopes without actions are left out).

        ``extra`` adds claims; it may not override a reserved one (ValueError). Returns (token, claims).
        """
        if extra and RESERVED_CLAIMS & extra.keys():
            raise ValueError(f"extra claims may not override {sorted(RESERVED_CLAIMS & extra.keys())}")
        key = self.keyring.active
        claims = self._base_claims(subject, self.settings.service, now, self.settings.lifetime)
        claims["access"] = access_claims(scopes)
        claims.update(extra or {})
        return self._sign(key, claims), claims

    def issue_refresh(self, subject: str, now: float, credential_id: str) -> str:
        """A refresh token (OAuth2 ``refresh_token``) bound to the credential it was obtained with."""
        key = self.keyring.active
        claims = self._base_claims(
            subject, refresh_audience(self.settings.service), now, self.settings.refresh_lifetime
        )
        claims["token_use"] = REFRESH_TOKEN_USE
        claims["cid"] = credential_id
        return self._sign(key, claims)
