"""Unit tests for registry.iam.secrets (hashing, verification, verified cache) and registry.iam.ratelimit."""

from __future__ import annotations

import base64
import re
import threading
import time

import pytest
import trio

from registry.iam.ratelimit import FailureLimiter
from registry.iam.secrets import (
    CHEAP,
    DEFAULT_PARAMS,
    Argon2Params,
    SecretHasher,
    VerifiedCache,
    generate_secret,
    generate_username,
)

# --- generation -------------------------------------------------------------------------------------------


def test_generate_secret_format() -> None:
    values = {generate_secret() for _ in range(50)}
    assert len(values) == 50
    for value in values:
        assert len(value) == 43
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value)
        assert len(base64.urlsafe_b64decode(value + "=")) == 32


def test_generate_username_format() -> None:
    name = generate_username("CI Bot_for/Team-7!")
    assert re.fullmatch(r"cibotforteam-7-[0-9a-f]{8}", name)
    assert generate_username("ci") != generate_username("ci")


def test_generate_username_truncates_prefix() -> None:
    name = generate_username("a" * 100)
    prefix, suffix = name.rsplit("-", 1)
    assert prefix == "a" * 32
    assert re.fullmatch(r"[0-9a-f]{8}", suffix)


def test_generate_username_empty_prefix_falls_back() -> None:
    assert re.fullmatch(r"user-[0-9a-f]{8}", generate_username("!!!"))


# --- hashing ----------------------------------------------------------------------------------------------


def test_default_params_are_owasp_minimum() -> None:
    assert (DEFAULT_PARAMS.time_cost, DEFAULT_PARAMS.memory_kib, DEFAULT_PARAMS.parallelism) == (2, 19456, 1)
    assert (CHEAP.time_cost, CHEAP.memory_kib, CHEAP.parallelism) == (1, 256, 1)
    assert Argon2Params() == DEFAULT_PARAMS


def test_hash_is_argon2id_with_params_and_salted() -> None:
    hasher = SecretHasher(CHEAP)
    first, second = hasher.hash("s3cret"), hasher.hash("s3cret")
    assert first.startswith("$argon2id$v=19$m=256,t=1,p=1$")
    assert first != second
    assert "s3cret" not in first


async def test_verify_roundtrip() -> None:
    hasher = SecretHasher(CHEAP)
    secret = generate_secret()
    stored = hasher.hash(secret)
    assert await hasher.verify(stored, secret) is True
    assert await hasher.verify(stored, secret + "x") is False
    assert await hasher.verify(stored, "") is False


async def test_verify_unicode_secret() -> None:
    hasher = SecretHasher(CHEAP)
    stored = hasher.hash("pässwörd-✓")
    assert await hasher.verify(stored, "pässwörd-✓") is True
    assert await hasher.verify(stored, "passwort") is False
    assert await hasher.verify(stored, "\udcff") is False  # unencodable: False, not an exception


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "garbage",
        "$argon2id$v=19$m=256,t=1,p=1$AAAA$BBBB",
        "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
    ],
)
async def test_verify_garbage_hash_is_false(garbage: str) -> None:
    assert await SecretHasher(CHEAP).verify(garbage, "anything") is False


async def test_verify_hash_made_with_other_params() -> None:
    stored = SecretHasher(Argon2Params(1, 512, 1)).hash("abc")
    assert await SecretHasher(CHEAP).verify(stored, "abc") is True


def test_needs_rehash() -> None:
    cheap = SecretHasher(CHEAP)
    stored = cheap.hash("abc")
    assert cheap.needs_rehash(stored) is False
    assert SecretHasher(Argon2Params(1, 512, 1)).needs_rehash(stored) is True
    assert cheap.needs_rehash("garbage") is True


def test_max_concurrent_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SecretHasher(CHEAP, max_concurrent=0)


class _CountingHasher(SecretHasher):
    """Records how many blocking verifications overlap."""

    def __init__(self, max_concurrent: int) -> None:
        super().__init__(CHEAP, max_concurrent=max_concurrent)
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.calls = 0

    def _verify_blocking(self, stored_hash: str, secret: str) -> bool:
        with self._lock:
            self.running += 1
            self.calls += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(0.05)
            return super()._verify_blocking(stored_hash, secret)
        finally:
            with self._lock:
                self.running -= 1


@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_verify_concurrency_is_capped(limit: int) -> None:
    hasher = _CountingHasher(limit)
    stored = hasher.hash("abc")
    results: list[bool] = []

    async def one(secret: str) -> None:
        results.append(await hasher.verify(stored, secret))

    async with trio.open_nursery() as nursery:
        for i in range(8):
            nursery.start_soon(one, "abc" if i % 2 == 0 else "wrong")
    assert hasher.calls == 8
    assert hasher.peak == limit
    assert sorted(results) == [False] * 4 + [True] * 4


# --- verified cache ---------------------------------------------------------------------------------------


def test_cache_hit_and_wrong_secret() -> None:
    cache = VerifiedCache(ttl=60)
    cache.put("alice", "pw", now=100.0, generation=1)
    assert cache.get("alice", "pw", now=100.0, generation=1) is True
    assert cache.get("alice", "pw2", now=100.0, generation=1) is False
    assert cache.get("alice", "pw", now=100.0, generation=1) is True  # wrong secret does not evict
    assert cache.get("bob", "pw", now=100.0, generation=1) is False


def test_cache_expiry_evicts() -> None:
    cache = VerifiedCache(ttl=60)
    cache.put("alice", "pw", now=100.0, generation=1)
    assert cache.get("alice", "pw", now=159.9, generation=1) is True
    assert cache.get("alice", "pw", now=160.0, generation=1) is False
    assert len(cache) == 0


def test_cache_generation_mismatch_evicts() -> None:
    cache = VerifiedCache()
    cache.put("alice", "pw", now=0.0, generation=7)
    assert cache.get("alice", "pw", now=1.0, generation=8) is False
    assert len(cache) == 0
    assert cache.get("alice", "pw", now=1.0, generation=7) is False  # gone for good


def test_cache_put_refreshes_and_replaces() -> None:
    cache = VerifiedCache(ttl=10)
    cache.put("alice", "old", now=0.0, generation=1)
    cache.put("alice", "new", now=5.0, generation=2)
    assert len(cache) == 1
    assert cache.get("alice", "old", now=6.0, generation=2) is False
    assert cache.get("alice", "new", now=14.0, generation=2) is True


def test_cache_invalidate_and_clear() -> None:
    cache = VerifiedCache()
    cache.put("alice", "pw", now=0.0, generation=1)
    cache.put("bob", "pw", now=0.0, generation=1)
    cache.invalidate("alice")
    cache.invalidate("nobody")
    assert cache.get("alice", "pw", now=1.0, generation=1) is False
    assert cache.get("bob", "pw", now=1.0, generation=1) is True
    cache.clear()
    assert len(cache) == 0
    assert cache.get("bob", "pw", now=1.0, generation=1) is False


def test_cache_evicts_oldest_when_full() -> None:
    cache = VerifiedCache(max_entries=3)
    for i, name in enumerate(["a", "b", "c"]):
        cache.put(name, "pw", now=float(i), generation=1)
    cache.put("a", "pw", now=3.0, generation=1)  # re-put makes "a" the newest
    cache.put("d", "pw", now=4.0, generation=1)
    assert len(cache) == 3
    assert cache.get("b", "pw", now=5.0, generation=1) is False
    for name in ["a", "c", "d"]:
        assert cache.get(name, "pw", now=5.0, generation=1) is True


def test_cache_keys_differ_between_instances() -> None:
    first, second = VerifiedCache(), VerifiedCache()
    first.put("alice", "pw", now=0.0, generation=1)
    second.put("alice", "pw", now=0.0, generation=1)
    assert first._entries["alice"].mac != second._entries["alice"].mac


def _reachable_values(obj: object, depth: int = 0) -> list[object]:
    """Every value reachable through vars(), dicts, lists, tuples and sets (bounded depth)."""
    if depth > 6:
        return []
    found: list[object] = [obj]
    children: list[object] = []
    if isinstance(obj, dict):
        children = [*obj.keys(), *obj.values()]
    elif isinstance(obj, list | tuple | set | frozenset):
        children = list(obj)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        children = list(vars(obj).values())
    for child in children:
        found.extend(_reachable_values(child, depth + 1))
    return found


def test_cache_never_stores_the_secret() -> None:
    secret = generate_secret()
    cache = VerifiedCache()
    cache.put("alice", secret, now=0.0, generation=1)
    encoded = secret.encode()
    for value in _reachable_values(cache):
        if isinstance(value, str):
            assert secret not in value
        if isinstance(value, bytes | bytearray):
            assert encoded not in value
    assert secret not in repr(vars(cache))


def test_cache_rejects_bad_config() -> None:
    with pytest.raises(ValueError):
        VerifiedCache(ttl=0)
    with pytest.raises(ValueError):
        VerifiedCache(max_entries=0)


# --- failure limiter --------------------------------------------------------------------------------------


def test_limiter_locks_after_max_failures() -> None:
    limiter = FailureLimiter(max_failures=3, window=60, lockout=30)
    for t in (0.0, 1.0):
        limiter.record_failure("cred:alice", t)
        assert limiter.retry_after("cred:alice", t) is None
    limiter.record_failure("cred:alice", 2.0)
    assert limiter.retry_after("cred:alice", 2.0) == pytest.approx(30.0)
    assert limiter.retry_after("cred:alice", 20.0) == pytest.approx(12.0)
    assert limiter.retry_after("cred:alice", 32.0) is None
    assert limiter.retry_after("src:10.0.0.1", 2.0) is None


def test_limiter_after_lockout_starts_fresh() -> None:
    limiter = FailureLimiter(max_failures=2, window=60, lockout=10)
    limiter.record_failure("k", 0.0)
    limiter.record_failure("k", 1.0)
    assert limiter.retry_after("k", 1.0) is not None
    limiter.record_failure("k", 12.0)  # lockout over: one failure, not yet locked
    assert limiter.retry_after("k", 12.0) is None
    limiter.record_failure("k", 13.0)
    assert limiter.retry_after("k", 13.0) == pytest.approx(10.0)


def test_limiter_sliding_window_forgets_old_failures() -> None:
    limiter = FailureLimiter(max_failures=3, window=10, lockout=30)
    limiter.record_failure("k", 0.0)
    limiter.record_failure("k", 5.0)
    limiter.record_failure("k", 10.0)  # the failure at 0.0 has left the window
    assert limiter.retry_after("k", 10.0) is None
    limiter.record_failure("k", 14.0)  # 5, 10, 14 are within 10 s
    assert limiter.retry_after("k", 14.0) == pytest.approx(30.0)


def test_limiter_failures_while_locked_do_not_extend() -> None:
    limiter = FailureLimiter(max_failures=1, window=60, lockout=10)
    limiter.record_failure("k", 0.0)
    limiter.record_failure("k", 5.0)
    assert limiter.retry_after("k", 5.0) == pytest.approx(5.0)
    assert limiter.retry_after("k", 10.0) is None


def test_limiter_success_resets() -> None:
    limiter = FailureLimiter(max_failures=3, window=60, lockout=30)
    limiter.record_failure("k", 0.0)
    limiter.record_failure("k", 1.0)
    limiter.record_success("k")
    limiter.record_failure("k", 2.0)
    limiter.record_failure("k", 3.0)
    assert limiter.retry_after("k", 3.0) is None
    limiter.record_failure("k", 4.0)
    assert limiter.retry_after("k", 4.0) is not None
    limiter.record_success("k")
    assert limiter.retry_after("k", 4.0) is None
    limiter.record_success("never-seen")


def test_limiter_keys_are_independent() -> None:
    limiter = FailureLimiter(max_failures=2, window=60, lockout=30)
    limiter.record_failure("cred:alice", 0.0)
    limiter.record_failure("cred:bob", 0.0)
    assert limiter.retry_after("cred:alice", 0.0) is None
    limiter.record_failure("cred:alice", 1.0)
    assert limiter.retry_after("cred:alice", 1.0) is not None
    assert limiter.retry_after("cred:bob", 1.0) is None


def test_limiter_memory_is_bounded() -> None:
    limiter = FailureLimiter(max_failures=2, window=60, lockout=30, max_keys=100)
    for i in range(1000):
        limiter.record_failure(f"src:{i}", float(i) / 1000)
    assert len(limiter) == 100
    # the most recent keys survive, the oldest were dropped
    limiter.record_failure("src:999", 1.0)
    assert limiter.retry_after("src:999", 1.0) is not None
    limiter.record_failure("src:0", 1.0)
    assert limiter.retry_after("src:0", 1.0) is None
    # per-key state stays below max_failures timestamps
    many = FailureLimiter(max_failures=5, window=1e9, lockout=1)
    for i in range(1000):
        many.record_failure("k", float(i) * 2)
    assert len(many._keys["k"].failures) < 5


def test_limiter_recent_failure_keeps_key_from_eviction() -> None:
    limiter = FailureLimiter(max_failures=2, window=60, lockout=30, max_keys=2)
    limiter.record_failure("a", 0.0)
    limiter.record_failure("b", 0.0)
    limiter.record_failure("a", 1.0)  # locks "a" and makes it the most recent
    limiter.record_failure("c", 1.0)  # drops "b"
    assert limiter.retry_after("a", 1.0) is not None
    assert len(limiter) == 2


def test_limiter_expired_lock_is_dropped_on_check() -> None:
    limiter = FailureLimiter(max_failures=1, window=60, lockout=10)
    limiter.record_failure("k", 0.0)
    assert limiter.retry_after("k", 11.0) is None
    assert len(limiter) == 0


def test_limiter_rejects_bad_config() -> None:
    for kwargs in ({"max_failures": 0}, {"window": 0}, {"lockout": -1}, {"max_keys": 0}):
        with pytest.raises(ValueError):
            FailureLimiter(**kwargs)
