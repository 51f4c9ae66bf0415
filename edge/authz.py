"""Who may pull through the edge: one decision per request, cache hits included (docs/edge.md "Authentication").

Modes (``EdgeSettings.auth_mode``):

* ``none``: every client is served (an open upstream).
* ``passthrough``: a client's ``Bearer`` token (issued by the primary's token service) is verified locally with
  the primary's JWKS (:class:`JwksKeys`: ES256, issuer, audience, expiry) and must grant ``pull`` on the
  repository; ``Basic`` credentials (or none: anonymous) are exchanged at the primary's token service for the
  repository's pull scope, the returned token verified the same way, and the decision cached for
  ``auth_cache_ttl`` under a SHA-256 of the header and scope (never the secret itself). The upstream
  requests made for the client carry the client's token (``edge.upstream.CLIENT_AUTHORIZATION``).
* ``identity``: clients are not authenticated; the edge's own service account is asked (a token for the
  repository's pull scope) and what it may pull is served. Decisions are cached for ``auth_cache_ttl``; while
  the token service is unavailable the last decision stands for ``max_stale`` more seconds.

In every mode a configured static client header (``client_header_name``) must be present and equal.
Refusals: 401 with a ``Bearer`` challenge to the primary's token service (``token_realm`` or the realm the
upstream advertises), 403 ``DENIED`` for valid credentials without the right, 503 when nothing can decide.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from edge.settings import EdgeSettings, read_secret
from edge.upstream import Upstream
from edge.upstreamauth import EXPIRY_MARGIN, IssuedToken, TokenFetcher, TokenRefused, TokenUnavailable
from registry.oci import errors as e
from registry.oci.scope import Scope, allowed_actions, challenge, parse_challenge
from registry.oci.tokens import TokenError, public_keys_from_jwks, verify_access
from registry.oci.wire import parse_basic

log = logging.getLogger("edge.authz")

JWKS_PATH = "/token/jwks.json"
RETRY_AFTER = 5.0  # identity mode: after a failed ask, the stale decision is reused this long without asking
MAX_DECISIONS = 10000  # past this, expired decisions are dropped (then all, if that is not enough)


class JwksKeys:
    """The primary's token-signing public keys, fetched from ``JWKS_PATH`` and refreshed when a token names
    an unknown key id — at most once per ``min_refresh`` seconds, so forged kids cannot flood the primary."""

    def __init__(self, client: httpx.AsyncClient, min_refresh: float, timeout: httpx.Timeout) -> None:
        self.client = client
        self.min_refresh = min_refresh
        self.timeout = timeout
        self.keys: dict[str, Any] = {}
        self.fetched_at: float | None = None  # trio clock of the last attempt
        self.lock = trio.Lock()

    async def refresh(self) -> None:
        async with self.lock:
            now = trio.current_time()
            if self.fetched_at is not None and now - self.fetched_at < self.min_refresh:
                return
            self.fetched_at = now
            try:
                response = await self.client.get(JWKS_PATH, auth=_no_auth, timeout=self.timeout)
                response.raise_for_status()
                fresh = public_keys_from_jwks(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("could not fetch the upstream's JWKS: %s", type(exc).__name__)
                return
            self.keys = fresh

    async def verify(self, token: str, issuer: str, service: str) -> dict[str, Any]:
        """The claims of a valid access token. Raises TokenError (reason as in ``registry.oci.tokens``)."""
        if not self.keys:
            await self.refresh()
        try:
            return verify_access(token, self.keys.get, issuer, service, time.time())
        except TokenError as err:
            if err.reason != "unknown_key":
                raise
        await self.refresh()
        return verify_access(token, self.keys.get, issuer, service, time.time())


def _no_auth(request: httpx.Request) -> httpx.Request:
    return request


@dataclass(frozen=True)
class Decision:
    allowed: bool
    authorization: str | None  # sent upstream on the client's behalf
    decided_at: float  # trio clock
    until: float  # trio clock: reuse before this


def _remember(decisions: dict[str, Decision], key: str, decision: Decision, horizon: float) -> None:
    """Store ``decision``; keep the table bounded (entries older than ``horizon`` go first)."""
    if len(decisions) >= MAX_DECISIONS:
        for old in [k for k, d in decisions.items() if d.until < horizon]:
            del decisions[old]
        if len(decisions) >= MAX_DECISIONS:
            decisions.clear()
    decisions[key] = decision


class KeyedLocks:
    """One ``trio.Lock`` per key while anyone holds or waits for it: concurrent cold requests for the same
    decision make one token exchange, the others reuse its result."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[trio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (trio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


def _hash_key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class EdgeAuthorizer:
    """Decides every /v2 request; see the module docstring."""

    def __init__(self, settings: EdgeSettings, upstream: Upstream) -> None:
        self.settings = settings
        self.upstream = upstream
        self.mode = settings.auth_mode
        self.fetcher = TokenFetcher(upstream.auth.fetcher.client) if upstream.auth is not None else None
        self.jwks = JwksKeys(upstream.client, settings.jwks_min_refresh, upstream.metadata_timeout)
        self.realm = settings.token_realm
        self.service = settings.token_service
        self.decisions: dict[str, Decision] = {}
        self.locks = KeyedLocks()
        self.header_value = read_secret(settings.client_header_value_file)
        self.credentials: tuple[str, str] | None = None
        if settings.identity_username:
            self.credentials = (settings.identity_username, read_secret(settings.identity_password_file))

    @property
    def issuer(self) -> str:
        return self.settings.token_issuer or self.service

    async def _discover(self) -> None:
        """Learn realm and service from the upstream's challenge to ``GET /v2/`` (unless configured).

        Raises:
            RegistryError: 503 when the upstream cannot be asked or sends no Bearer challenge.
        """
        if self.realm and self.service:
            return
        try:
            response = await self.upstream.client.get("/v2/", auth=_no_auth, timeout=self.upstream.metadata_timeout)
        except httpx.HTTPError:
            raise e.RegistryError(e.UNAVAILABLE, "the upstream's token service is unknown (upstream down)") from None
        scheme, params = parse_challenge(response.headers.get("www-authenticate", ""))
        if scheme != "bearer" or not params.get("realm"):
            raise e.RegistryError(e.UNAVAILABLE, "the upstream sends no Bearer challenge; set token_realm")
        self.realm = self.realm or params["realm"]
        self.service = self.service or params.get("service", "")

    def _name(self, repo: str) -> str:
        return f"library/{repo}" if self.settings.docker_hub and "/" not in repo else repo

    def _challenge(self, repo: str | None, error: str | None = None, message: str | None = None) -> e.RegistryError:
        scopes = [Scope("repository", self._name(repo), ("pull",))] if repo else []
        value = challenge(self.realm, self.service, scopes, error)
        return e.RegistryError(e.UNAUTHORIZED, message, headers={"WWW-Authenticate": value})

    def _check_client_header(self, value: str | None) -> None:
        if not self.settings.client_header_name:
            return
        if value is None or not hmac.compare_digest(value.encode(), self.header_value.encode()):
            raise e.RegistryError(e.DENIED, f"this edge requires the {self.settings.client_header_name} header")

    async def authorize(self, authorization: str | None, client_header: str | None, repo: str | None) -> str | None:
        """Decide a pull of ``repo`` (None: the ``/v2/`` base). Returns the authorization to send upstream for
        this client (None: the edge's own).

        Raises:
            RegistryError: 401 with a challenge, 403 ``DENIED``, 503 when the decision cannot be made.
        """
        self._check_client_header(client_header)
        if self.mode == "none":
            return None
        if self.mode == "identity":
            if repo is not None:
                await self._identity(repo)
            return None
        await self._discover()
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme.lower() == "bearer":
            return await self._bearer(credential.strip(), repo)
        if scheme.lower() == "basic":
            return await self._exchange(authorization or "", repo)
        if repo is None:
            raise self._challenge(None)
        return await self._exchange("", repo)

    async def _bearer(self, token: str, repo: str | None) -> str:
        try:
            claims = await self.jwks.verify(token, self.issuer, self.service)
        except TokenError as err:
            log.info("refused a token: %s", err.reason)
            raise self._challenge(repo, "invalid_token", "invalid or expired token") from None
        if repo is not None and "pull" not in allowed_actions(claims.get("access"), "repository", self._name(repo)):
            raise self._challenge(repo, "insufficient_scope", "token lacks the needed access")
        return f"Bearer {token}"

    def _scope(self, repo: str | None) -> str:
        return f"repository:{self._name(repo)}:pull" if repo else ""

    async def _grant(self, credentials: tuple[str, str] | None, repo: str | None) -> tuple[bool, str, float]:
        """Ask the token service for ``repo``'s pull scope: (pull granted, token, its expiry on trio's clock)."""
        assert self.fetcher is not None
        issued = await self.fetcher.fetch(self.realm, self.service, self._scope(repo) or None, credentials)
        try:
            claims = await self.jwks.verify(issued.token, self.issuer, self.service)
        except TokenError as err:
            log.warning("the token service issued a token the edge cannot verify: %s", err.reason)
            raise e.RegistryError(e.UNAVAILABLE, "the upstream's token could not be verified") from None
        allowed = repo is None or "pull" in allowed_actions(claims.get("access"), "repository", self._name(repo))
        return allowed, issued.token, issued.expires_at

    def _current(self, key: str) -> Decision | None:
        decision = self.decisions.get(key)
        return decision if decision is not None and decision.until > trio.current_time() else None

    async def _exchange(self, authorization: str, repo: str | None) -> str | None:
        key = _hash_key("passthrough", authorization, self._scope(repo))
        decision = self._current(key)
        if decision is None:
            async with self.locks.hold(key):
                decision = self._current(key) or await self._exchange_now(key, authorization, repo)
        if decision.allowed:
            return decision.authorization
        if not authorization:
            raise self._challenge(repo)
        raise e.RegistryError(e.DENIED, f"requested access to {repo} is denied")

    async def _exchange_now(self, key: str, authorization: str, repo: str | None) -> Decision:
        credentials = None
        if authorization:
            credentials = parse_basic(authorization)
            if credentials is None:
                raise self._challenge(repo, message="malformed Basic credentials")
        try:
            allowed, token, expires_at = await self._grant(credentials, repo)
        except TokenRefused:
            raise self._challenge(repo, message="invalid username or password") from None
        now = trio.current_time()
        until = min(now + self.settings.auth_cache_ttl, expires_at - EXPIRY_MARGIN)
        decision = Decision(allowed, f"Bearer {token}", now, until)
        _remember(self.decisions, key, decision, now - self.settings.max_stale)
        return decision

    async def _identity(self, repo: str) -> None:
        key = _hash_key("identity", self._scope(repo))
        decision = self._current(key)
        if decision is None:
            async with self.locks.hold(key):
                decision = self._current(key) or await self._identity_now(key, repo)
        if not decision.allowed:
            raise e.RegistryError(e.DENIED, f"this edge may not serve {repo}")

    async def _identity_now(self, key: str, repo: str) -> Decision:
        """Ask the token service; when it cannot answer, the last decision stands until it is ``max_stale``
        past its TTL (asked again at most every ``RETRY_AFTER`` seconds meanwhile)."""
        last = self.decisions.get(key)
        try:
            await self._discover()
            allowed, token, expires_at = await self._grant(self.credentials, repo)
        except TokenRefused:
            self.decisions.clear()
            log.error("the token service refused the edge identity %s", self.settings.identity_username)
            raise e.RegistryError(e.UNAVAILABLE, "the edge's identity was refused by the upstream") from None
        except (TokenUnavailable, e.RegistryError) as exc:
            now = trio.current_time()
            if last is None or now - last.decided_at > self.settings.auth_cache_ttl + self.settings.max_stale:
                log.warning("no authorization decision for %s: %s", repo, exc)
                raise e.RegistryError(e.UNAVAILABLE, "the edge cannot reach the upstream's token service") from None
            stale = Decision(last.allowed, None, last.decided_at, now + RETRY_AFTER)
            _remember(self.decisions, key, stale, now - self.settings.max_stale)
            return stale
        now = trio.current_time()
        decision = Decision(allowed, None, now, now + self.settings.auth_cache_ttl)
        _remember(self.decisions, key, decision, now - self.settings.max_stale)
        if allowed and self.upstream.auth is not None:  # the edge's own upstream requests reuse the token
            self.upstream.auth.remember(self._scope(repo), IssuedToken(token, expires_at))
        return decision

