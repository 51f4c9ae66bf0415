"""Signing keys and the key ring that publishes them as a JWKS (pure: no storage, ``now`` is an argument).

A key is born active; ``KeyRing.rotate`` retires the active key and creates a new one. A retired key signs
nothing, but it stays published (JWKS) and usable for verification until every token it can have signed has
expired: ``now - retired < max_token_lifetime``. After that ``prune`` names it for deletion.

Persistence belongs to the caller (a storage adapter): it loads ``SigningKey`` values into
``KeyRing.from_keys`` and saves ``KeyRing.keys`` after ``rotate`` or ``prune``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from registry.oci.tokens import ALGORITHM

_COORD_BYTES = 32  # P-256


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _public_fields(public: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The RFC 7638 required members of an EC P-256 public JWK."""
    numbers = public.public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64url(numbers.x.to_bytes(_COORD_BYTES, "big")),
        "y": _b64url(numbers.y.to_bytes(_COORD_BYTES, "big")),
    }


def jwk_thumbprint(public: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 SHA-256 JWK thumbprint, base64url without padding."""
    canonical = json.dumps(_public_fields(public), sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


@dataclass(frozen=True)
class SigningKey:
    """An EC P-256 signing key. ``retired`` is None while the key is active."""

    kid: str
    private_pem: bytes
    created: float
    retired: float | None = None

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        """Load the private key. Raises ValueError if the PEM is not an EC P-256 private key."""
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"signing key {self.kid!r} is not an EC P-256 private key")
        return key

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key().public_key()

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK (never contains ``d``)."""
        return {**_public_fields(self.public_key()), "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    def is_published(self, now: float, max_token_lifetime: float) -> bool:
        """Active, or retired recently enough that tokens it signed may still be valid."""
        return self.retired is None or now - self.retired < max_token_lifetime


def new_signing_key(now: float) -> SigningKey:
    """Generate a fresh active P-256 key; its kid is the RFC 7638 thumbprint of its public key."""
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningKey(kid=jwk_thumbprint(private.public_key()), private_pem=pem, created=now, retired=None)


class KeyRing:
    """The set of signing keys. Mutated only by ``rotate`` and ``prune``; never does I/O.

    ``max_token_lifetime`` arguments must cover the longest-lived token any key signs (refresh tokens
    included) plus the verifier's leeway.
    """

    def __init__(self) -> None:
        self._keys: dict[str, SigningKey] = {}

    @classmethod
    def from_keys(cls, keys: Iterable[SigningKey]) -> KeyRing:
        """Raises ValueError on a duplicate kid."""
        ring = cls()
        for key in keys:
            if key.kid in ring._keys:
                raise ValueError(f"duplicate signing key id {key.kid!r}")
            ring._keys[key.kid] = key
        return ring

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """All keys, oldest first (what the caller persists)."""
        return tuple(sorted(self._keys.values(), key=lambda k: k.created))

    @property
    def active(self) -> SigningKey:
        """The newest non-retired key. Raises LookupError if there is none (call ``rotate``)."""
        candidates = [k for k in self.keys if k.retired is None]
        if not candidates:
            raise LookupError("no active signing key")
        return candidates[-1]

    def rotate(self, now: float) -> SigningKey:
        """Create a new active key and retire every previously active one at ``now``. Returns the new key."""
        for kid, key in list(self._keys.items()):
            if key.retired is None:
                self._keys[kid] = replace(key, retired=now)
        key = new_signing_key(now)
        self._keys[key.kid] = key
        return key

    def published(self, now: float, max_token_lifetime: float) -> list[SigningKey]:
        """Keys that may verify tokens: the active ones first, then retired ones, newest first."""
        keys = [k for k in self.keys if k.is_published(now, max_token_lifetime)]
        return sorted(keys, key=lambda k: (k.retired is None, k.retired or 0.0, k.created), reverse=True)

    def jwks(self, now: float, max_token_lifetime: float) -> dict[str, Any]:
        """The JWK Set document: ``{"keys": [public JWK, ...]}``."""
        return {"keys": [k.public_jwk() for k in self.published(now, max_token_lifetime)]}

    def public_key(self, kid: str, now: float, max_token_lifetime: float) -> ec.EllipticCurvePublicKey | None:
        """The verification key for ``kid``, or None if unknown or retired too long ago."""
        key = self._keys.get(kid)
        if key is None or not key.is_published(now, max_token_lifetime):
            return None
        return key.public_key()

    def prune(self, now: float, max_token_lifetime: float) -> list[str]:
        """Drop retired keys no longer published; returns their kids for the caller to delete from storage."""
        gone = [k.kid for k in self.keys if not k.is_published(now, max_token_lifetime)]
        for kid in gone:
            del self._keys[kid]
        return gone
