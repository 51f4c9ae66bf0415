"""Kubernetes service-account tokens as passwords (machine identities).

A pod's projected, audience-bound service-account token (a JWT signed by the cluster's issuer) can be
presented as the password at ``/token`` or with Basic auth. It is verified against the configured issuer's
JWKS (a file, or a URL fetched at start and on unknown key ids) and mapped to a registry service account
by an (issuer, subject) binding made with ``registry admin k8s-identity bind``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jwt
import trio

ALGORITHMS = ["RS256", "ES256", "EdDSA"]


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and value.startswith("eyJ")


class K8sTokenVerifier:
    def __init__(self, issuer: str, jwks: str, audience: str) -> None:
        self.issuer = issuer
        self.source = jwks
        self.audience = audience or None
        self._keys: dict[str, Any] = {}

    async def _load(self) -> None:
        if self.source.startswith(("https://", "http://")):
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.get(self.source)
                response.raise_for_status()
                doc = response.json()
        else:
            doc = json.loads(await trio.to_thread.run_sync(Path(self.source).read_text))
        keyset = jwt.PyJWKSet.from_dict(doc)
        self._keys = {key.key_id: key for key in keyset.keys if key.key_id}

    async def verify(self, token: str, now: float) -> str | None:
        """The token's subject (``system:serviceaccount:<ns>:<name>``), or None if it does not verify."""
        try:
            header = jwt.get_unverified_header(token)
            kid = str(header.get("kid", ""))
            if header.get("alg") not in ALGORITHMS:
                return None
            if kid not in self._keys:
                await self._load()
            key = self._keys.get(kid)
            if key is None:
                return None
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "sub"], "verify_aud": self.audience is not None},
            )
        except (jwt.PyJWTError, httpx.HTTPError, OSError, ValueError):
            return None
        subject = claims.get("sub")
        return subject if isinstance(subject, str) else None
