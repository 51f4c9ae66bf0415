"""Authenticating to the upstream: the Docker token flow as an ``httpx.Auth``, and token fetching.

* :class:`TokenFetcher` asks a token service (``realm``) for a token: ``GET realm?service=…&scope=…``, anonymous
  or with Basic credentials. It has its own small client, so the flow never re-enters the upstream client.
* :class:`BearerChallengeAuth` sends a request; on ``401`` with a ``Bearer`` challenge it fetches a token for
  the challenged ``realm``/``service``/``scope`` (with the configured credentials, or anonymously) and retries
  once. Tokens are cached per scope until shortly before they expire, and sent pre-emptively next time. The
  same flow serves the blocking client that receives blob bodies in a worker thread (``edge.fetch``): there
  the token cache is used on the event loop through ``trio.from_thread``.
  A request that already carries ``Authorization`` (a client's own, in passthrough mode) is sent as it is.
* Redirects (blob storage) are followed by httpx inside this flow; httpx drops ``Authorization`` when a redirect
  leaves the origin, so a token never reaches a third-party host.

Secrets (the password, tokens) are never logged.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from registry.oci import errors as e
from registry.oci.scope import parse_challenge

MAX_TOKENS = 10000  # cached scopes; past this, expired tokens are dropped (then all)
EXPIRY_MARGIN = 10.0  # a cached token is not used in its last seconds
DEFAULT_EXPIRES_IN = 60  # the token spec's default when ``expires_in`` is missing
_REPO_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags|referrers)/")


class TokenUnavailable(e.RegistryError):
    """The token service could not answer (transport error, timeout, 429, 5xx)."""

    def __init__(self, reason: str) -> None:
        super().__init__(e.UNAVAILABLE, f"token service unavailable: {reason}")


class TokenRefused(Exception):
    """The token service refused the credentials (401/403) or answered something that is not a token."""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: float  # trio clock


def pull_scope_for_path(path: str) -> str | None:
    """``repository:<name>:pull`` for a pull route's path, else None."""
    found = _REPO_PATH.match(path)
    return f"repository:{found.group('name')}:pull" if found else None


class TokenFetcher:
    """Fetches tokens from a token service. Raises :class:`TokenUnavailable` / :class:`TokenRefused`."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def _get(self, realm: str, params: dict[str, str], auth: httpx.Auth | None) -> httpx.Response:
        """GET the token, once more if a kept-alive connection was closed under it (the server's keep-alive
        timeout racing the reuse: ``RemoteProtocolError``, seen in tests/iam/test_edge_matrix.py). The GET is
        idempotent."""
        for attempt in (1, 2):
            try:
                return await self.client.get(realm, params=params, auth=auth)
            except httpx.RemoteProtocolError as exc:
                if attempt == 2:
                    raise TokenUnavailable(type(exc).__name__) from None
            except httpx.HTTPError as exc:
                raise TokenUnavailable(type(exc).__name__) from None
        raise AssertionError("unreachable")

    async def fetch(
        self, realm: str, service: str, scope: str | None, credentials: tuple[str, str] | None
    ) -> IssuedToken:
        params = {"service": service}
        if scope:
            params["scope"] = scope
        auth = httpx.BasicAuth(*credentials) if credentials is not None else None
        response = await self._get(realm, params, auth)
        if response.status_code == 429 or response.status_code >= 500:
            raise TokenUnavailable(f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise TokenRefused(f"HTTP {response.status_code}")
        try:
            doc: dict[str, Any] = response.json()
            token = doc.get("token") or doc.get("access_token")
            expires_in = doc.get("expires_in") or DEFAULT_EXPIRES_IN
        except (ValueError, AttributeError):
            raise TokenRefused("the token service did not answer JSON") from None
        if not isinstance(token, str) or not token or not isinstance(expires_in, int | float):
            raise TokenRefused("the token service's answer has no token")
        return IssuedToken(token, trio.current_time() + float(expires_in))

    async def aclose(self) -> None:
        await self.client.aclose()


class BearerChallengeAuth(httpx.Auth):
    """The upstream's token flow for the edge's own requests (anonymous or ``credentials``)."""

    def __init__(self, fetcher: TokenFetcher, credentials: tuple[str, str] | None) -> None:
        self.fetcher = fetcher
        self.credentials = credentials
        self.tokens: dict[str, IssuedToken] = {}
        self.service = ""  # the last challenge's service and realm (what the edge's own clients are sent to)
        self.realm = ""

    def cached(self, scope: str) -> str | None:
        issued = self.tokens.get(scope)
        if issued is None or issued.expires_at - EXPIRY_MARGIN <= trio.current_time():
            self.tokens.pop(scope, None)
            return None
        return issued.token

    async def token_for(self, realm: str, service: str, scope: str) -> str:
        """A token for ``scope`` with this auth's credentials (cached). Raises TokenUnavailable/TokenRefused."""
        token = self.cached(scope)
        if token is None:
            issued = await self.fetcher.fetch(realm, service, scope, self.credentials)
            self.remember(scope, issued)
            token = issued.token
        return token

    def remember(self, scope: str, issued: IssuedToken) -> None:
        if len(self.tokens) >= MAX_TOKENS:
            now = trio.current_time()
            for old in [k for k, t in self.tokens.items() if t.expires_at <= now]:
                del self.tokens[old]
            if len(self.tokens) >= MAX_TOKENS:
                self.tokens.clear()
        self.tokens[scope] = issued

    def _challenge(self, response: httpx.Response) -> dict[str, str] | None:
        """The parameters of a ``401`` Bearer challenge with a realm, else None."""
        scheme, params = parse_challenge(response.headers.get("www-authenticate", ""))
        if response.status_code != 401 or scheme != "bearer" or not params.get("realm"):
            return None
        return params

    async def _answer(self, params: dict[str, str], key: str | None, rejected: bool) -> str:
        """A token for a challenge (``rejected``: the token just sent was refused). Raises TokenRefused,
        TokenUnavailable."""
        self.realm, self.service = params["realm"], params.get("service", "")
        scope = params.get("scope") or key or ""
        if rejected:  # the cached token was not good enough
            self.tokens.pop(scope, None)
        token = await self.token_for(self.realm, self.service, scope)
        if key and key != scope and scope in self.tokens:
            self.remember(key, self.tokens[scope])
        return token

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """The same flow for the blocking client of ``edge.fetch``, which runs in a worker thread started by
        ``trio.to_thread``: the token cache is read and filled on the event loop (``trio.from_thread``), so it
        is only ever touched there."""
        if "authorization" in request.headers:  # a client's own credential (passthrough): not ours to replace
            yield request
            return
        key = pull_scope_for_path(request.url.path)
        token = trio.from_thread.run_sync(self.cached, key) if key else None
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        params = self._challenge(response)
        if params is None:
            return
        try:
            token = trio.from_thread.run(self._answer, params, key, token is not None)
        except TokenRefused:
            return  # the 401 stands
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if "authorization" in request.headers:  # a client's own credential (passthrough): not ours to replace
            yield request
            return
        key = pull_scope_for_path(request.url.path)
        token = self.cached(key) if key else None
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        params = self._challenge(response)
        if params is None:
            return
        try:
            token = await self._answer(params, key, token is not None)
        except TokenRefused:
            return  # the 401 stands
        request.headers["Authorization"] = f"Bearer {token}"
        yield request
