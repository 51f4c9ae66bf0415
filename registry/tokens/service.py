"""TokenService: the key ring persisted in the IAM store, plus issuing and verifying with it.

Keys are created on first start and reloaded when the IAM generation changes (``registry admin
rotate-key`` run beside the server takes effect on the next token request)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import trio

from registry.iam.model import Identity
from registry.iam.store import SqliteIamStore
from registry.oci.scope import Scope
from registry.tokens.issuer import TokenIssuer, TokenSettings
from registry.tokens.keys import KeyRing, SigningKey
from registry.tokens.verifier import verify_access, verify_refresh

LEEWAY = 5.0


class TokenService:
    def __init__(self, store: SqliteIamStore, settings: TokenSettings, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.ring = KeyRing()
        self._generation = -1
        self._lock = trio.Lock()

    @property
    def max_lifetime(self) -> float:
        return self.settings.max_lifetime + LEEWAY

    async def _persist(self, deleted: list[str]) -> None:
        await self.store.save_keys([(k.kid, k.private_pem, k.created, k.retired) for k in self.ring.keys], deleted)

    async def refresh(self) -> None:
        """Load the keys if the IAM generation moved; create the first key if there is none."""
        generation = await self.store.generation()
        if generation == self._generation:
            return
        async with self._lock:
            rows = await self.store.load_keys()
            self.ring = KeyRing.from_keys(SigningKey(kid, pem, created, retired) for kid, pem, created, retired in rows)
            now = self.clock()
            deleted = self.ring.prune(now, self.max_lifetime)
            if not any(k.retired is None for k in self.ring.keys):
                self.ring.rotate(now)
                await self._persist(deleted)
            elif deleted:
                await self._persist(deleted)
            self._generation = await self.store.generation()

    async def rotate(self) -> str:
        """Retire the active key (still published until its tokens expire) and start a new one."""
        await self.refresh()
        key = self.ring.rotate(self.clock())
        await self._persist(self.ring.prune(self.clock(), self.max_lifetime))
        return key.kid

    def _key_for(self, kid: str) -> Any:
        return self.ring.public_key(kid, self.clock(), self.max_lifetime)

    def issue(self, identity: Identity, scopes: Sequence[Scope]) -> tuple[str, dict[str, Any]]:
        extra = {"cid": identity.credential} if identity.credential else None
        return TokenIssuer(self.ring, self.settings).issue_access(identity.subject, scopes, self.clock(), extra)

    def issue_refresh(self, identity: Identity) -> str:
        return TokenIssuer(self.ring, self.settings).issue_refresh(
            identity.subject, self.clock(), identity.credential or ""
        )

    def verify(self, token: str) -> dict[str, Any]:
        """Claims of a valid access token. Raises TokenError."""
        s = self.settings
        return verify_access(token, self._key_for, s.issuer, s.service, self.clock(), LEEWAY)

    def verify_refresh(self, token: str) -> dict[str, Any]:
        s = self.settings
        return verify_refresh(token, self._key_for, s.issuer, s.service, self.clock(), LEEWAY)

    def jwks(self) -> dict[str, Any]:
        return self.ring.jwks(self.clock(), self.max_lifetime)
