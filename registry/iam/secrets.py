"""Credential secrets: generation, argon2id hashing and verification, and a short-lived verified cache.

This module owns how a credential secret is created, stored (as an argon2id hash, never in plain form) and
checked. It does no database or HTTP work: callers fetch the stored hash and pass it in.

Memory is the binding constraint: one argon2id verification holds ``memory_kib`` KiB for its duration, so
:class:`SecretHasher` runs at most ``max_concurrent`` verifications at once (in worker threads) and the
default parameters are the OWASP minimum (19 MiB, t=2, p=1) rather than the library's 64 MiB.
:class:`VerifiedCache` lets clients that send Basic auth on every request skip argon2 for a short TTL; it
keeps only an HMAC of each secret under a random per-instance key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import argon2
import trio
from argon2.exceptions import Argon2Error

__all__ = [
    "CHEAP",
    "DEFAULT_PARAMS",
    "Argon2Params",
    "SecretHasher",
    "VerifiedCache",
    "generate_secret",
    "generate_username",
]

_USERNAME_PREFIX_MAX = 32
_NOT_USERNAME_CHAR = re.compile(r"[^a-z0-9-]")


def generate_secret() -> str:
    """Return a new secret: 32 random bytes, url-safe base64 without padding (43 characters)."""
    return secrets.token_urlsafe(32)


def generate_username(prefix: str) -> str:
    """Return ``<prefix>-<8 random hex chars>``.

    The prefix is lowercased, stripped of every character outside ``[a-z0-9-]`` and truncated to 32
    characters; if nothing is left, ``"user"`` is used instead.
    """
    clean = _NOT_USERNAME_CHAR.sub("", prefix.lower())[:_USERNAME_PREFIX_MAX] or "user"
    return f"{clean}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Argon2Params:
    """argon2id cost parameters; the defaults are the OWASP-recommended minimum (19 MiB, t=2, p=1)."""

    time_cost: int = 2
    memory_kib: int = 19456
    parallelism: int = 1


DEFAULT_PARAMS = Argon2Params()
CHEAP = Argon2Params(time_cost=1, memory_kib=256, parallelism=1)
"""Deliberately weak parameters for tests only."""


class SecretHasher:
    """Hash secrets with argon2id and verify them in worker threads, at most ``max_concurrent`` at once.

    Peak memory spent on verification is about ``max_concurrent * params.memory_kib`` KiB whatever the
    number of clients logging in; extra verifications wait for a slot.
    """

    def __init__(self, params: Argon2Params = DEFAULT_PARAMS, *, max_concurrent: int = 2) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.params = params
        self._hasher = argon2.PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            type=argon2.Type.ID,
        )
        self._limiter = trio.CapacityLimiter(max_concurrent)

    def hash(self, secret: str) -> str:
        """Return the argon2id PHC string for ``secret`` (blocking; uses ``params.memory_kib`` KiB)."""
        return self._hasher.hash(secret)

    async def verify(self, stored_hash: str, secret: str) -> bool:
        """Return whether ``secret`` matches ``stored_hash``.

        Returns False for a wrong secret and for a stored hash that is not a valid argon2 hash; never raises
        for either. Runs in a worker thread, waiting for one of ``max_concurrent`` slots first. Cancellation
        while waiting for a slot is immediate; once the hash runs, cancellation takes effect when it ends.
        """
        return await trio.to_thread.run_sync(self._verify_blocking, stored_hash, secret, limiter=self._limiter)

    def _verify_blocking(self, stored_hash: str, secret: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, secret)
        except (Argon2Error, ValueError):  # mismatch, invalid hash (ValueError), unencodable secret
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """Return whether ``stored_hash`` was made with other parameters (or is not a valid argon2id hash)."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except ValueError:
            return True


@dataclass(frozen=True)
class _CacheEntry:
    mac: bytes
    expires_at: float
    generation: int


class VerifiedCache:
    """Remember recently verified ``(username, secret)`` pairs for ``ttl`` seconds.

    Each entry holds an HMAC-SHA256 of the username and secret under a random 32-byte key made when the
    cache is created (so per process), never the secret. ``generation`` is the caller's data version from
    the database: an entry is valid only for the generation it was stored under, so a revocation committed
    by another process invalidates it. At most ``max_entries`` entries are kept; the oldest is evicted first.
    Pure: times are passed in as ``now``.
    """

    def __init__(self, ttl: float = 60.0, max_entries: int = 10000) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.ttl = ttl
        self.max_entries = max_entries
        self._key = secrets.token_bytes(32)
        self._entries: dict[str, _CacheEntry] = {}

    def _mac(self, username: str, secret: str) -> bytes:
        message = username.encode("utf-8", "surrogatepass") + b"\0" + secret.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def get(self, username: str, secret: str, now: float, generation: int) -> bool:
        """Return True if this pair was stored under ``generation`` and has not expired.

        An expired entry, or one from another generation, is evicted. A wrong secret returns False and
        leaves the entry in place.
        """
        entry = self._entries.get(username)
        if entry is None:
            return False
        if now >= entry.expires_at or entry.generation != generation:
            del self._entries[username]
            return False
        return hmac.compare_digest(entry.mac, self._mac(username, secret))

    def put(self, username: str, secret: str, now: float, generation: int) -> None:
        """Remember that ``secret`` was verified for ``username`` under ``generation``, until ``now + ttl``."""
        self._entries.pop(username, None)
        while len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[username] = _CacheEntry(self._mac(username, secret), now + self.ttl, generation)

    def invalidate(self, username: str) -> None:
        """Forget ``username`` (no error if absent)."""
        self._entries.pop(username, None)

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
