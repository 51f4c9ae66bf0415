"""The upstream registry client: one ``httpx.AsyncClient`` and the translation of its failures, done once here.

Transport errors, timeouts, 429 and 5xx become :class:`UpstreamUnavailable` (the edge may then serve stale);
other error answers become a :class:`~registry.oci.errors.RegistryError` with the upstream's code and status.
This module owns no cache state.

Authentication (``edge.upstreamauth``): the edge's own requests go through the Bearer challenge flow, anonymous
or with the configured identity credential. In passthrough mode a request made on behalf of a client carries
that client's authorization instead: the route sets :data:`CLIENT_AUTHORIZATION` (a context variable) before it
calls the services, and every upstream request made in that task — and in the fills it starts, which inherit
the context — sends it. Blob bodies are fetched by a second, blocking client in worker threads (``edge.fetch``),
with the same auth flow, redirects, timeouts and limits. Docker Hub: single-component repository names get ``library/``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from edge.fetch import UpstreamBody, open_blocking_client, send_get
from edge.metrics import EdgeMetrics
from edge.settings import EdgeSettings, read_secret
from edge.upstreamauth import BearerChallengeAuth, TokenFetcher, TokenUnavailable
from registry.oci import errors as e
from registry.oci import mediatypes as mt

log = logging.getLogger("edge.upstream")

MANIFEST_ACCEPT = ", ".join(
    [mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST, mt.DOCKER_SCHEMA1_SIGNED]
)
CLIENT_AUTHORIZATION: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_authorization", default=None)
_SINGLE_COMPONENT = re.compile(r"^/v2/(?P<name>[^/]+)/(?P<rest>(?:manifests|blobs|tags|referrers)/.*)$")
FETCH_THREADS = 64  # blob bodies received at once (worker threads; further fills wait for one)
_KNOWN_CODES = {(v.code, v.status): v for v in vars(e).values() if isinstance(v, e.ErrorCode)}


class UpstreamUnavailable(e.RegistryError):
    """The upstream could not answer: connection refused or reset, timeout, 429 or 5xx."""

    def __init__(self, reason: str) -> None:
        super().__init__(e.UNAVAILABLE, f"upstream unavailable: {reason}")


def is_unavailable_status(status: int) -> bool:
    return status == 429 or status >= 500


@dataclass(frozen=True)
class Reply:
    """A complete upstream answer (status, headers, body)."""

    status: int
    headers: httpx.Headers
    content: bytes


def relayed_error(status: int, content: bytes, default: e.ErrorCode) -> e.RegistryError:
    """The upstream's error answer as a RegistryError with the same status and (when it sent one) OCI code."""
    code, message = default.code, default.message
    with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):  # not an envelope: keep the default
        first = json.loads(content)["errors"][0]
        code, message = str(first["code"]), str(first.get("message") or message)
    known = _KNOWN_CODES.get((code, status))
    return e.RegistryError(known or e.ErrorCode(code, message, status), message)


def docker_hub_path(path: str) -> str:
    """``/v2/alpine/…`` → ``/v2/library/alpine/…`` (Docker Hub's official images); other paths unchanged."""
    found = _SINGLE_COMPONENT.match(path)
    return f"/v2/library/{found.group('name')}/{found.group('rest')}" if found else path


class Upstream:
    """The upstream registry at ``base_url``. Open with :func:`open_upstream`."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        blocking: httpx.Client,
        metrics: EdgeMetrics,
        metadata_timeout: httpx.Timeout,
        auth: BearerChallengeAuth | None = None,
        docker_hub: bool = False,
    ) -> None:
        self.client = client
        self.blocking = blocking  # blob bodies, in worker threads (edge.fetch)
        self.fetch_limiter = trio.CapacityLimiter(FETCH_THREADS)
        self.metrics = metrics
        self.metadata_timeout = metadata_timeout
        self.auth = auth
        self.docker_hub = docker_hub

    def _prepare(self, path: str, headers: dict[str, str] | None) -> tuple[str, dict[str, str]]:
        merged = dict(headers or {})
        client_auth = CLIENT_AUTHORIZATION.get()
        if client_auth:
            merged["Authorization"] = client_auth
        return (docker_hub_path(path) if self.docker_hub else path), merged

    def _check(self, response: httpx.Response) -> httpx.Response:
        if is_unavailable_status(response.status_code):
            raise UpstreamUnavailable(f"HTTP {response.status_code}")
        return response

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, max_bytes: int = 4 * 1024 * 1024
    ) -> Reply:
        """``method path`` with the whole (bounded) body read, within the metadata timeout.

        Raises:
            UpstreamUnavailable: transport error, timeout, 429, 5xx, or a body over ``max_bytes``.
        """
        self.metrics.upstream_requests += 1
        path, headers = self._prepare(path, headers)
        try:
            async with self.client.stream(method, path, headers=headers, timeout=self.metadata_timeout) as response:
                self._check(response)
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise UpstreamUnavailable(f"{method} {path}: body over {max_bytes} bytes")
                self.metrics.upstream_bytes += len(body)
                return Reply(response.status_code, response.headers, bytes(body))
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"{type(exc).__name__}: {exc}") from None
        except TokenUnavailable as exc:
            raise UpstreamUnavailable(str(exc)) from None

    @asynccontextmanager
    async def fetch(self, path: str, headers: dict[str, str] | None = None) -> AsyncIterator[UpstreamBody]:
        """``GET path`` by the blocking client in a worker thread (``edge.fetch``), the body left on the wire;
        the caller counts ``upstream_bytes``. The response is closed on exit.

        Raises:
            UpstreamUnavailable: transport error or timeout (before the headers or while the caller reads the
                body inside the ``async with``), 429, 5xx.
        """
        self.metrics.upstream_requests += 1
        path, headers = self._prepare(path, headers)
        try:
            body = await send_get(self.blocking, path, headers, self.fetch_limiter)
            try:
                if is_unavailable_status(body.status_code):
                    raise UpstreamUnavailable(f"HTTP {body.status_code}")
                yield body
            finally:
                with trio.CancelScope(shield=True):
                    await body.aclose()
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"{type(exc).__name__}: {exc}") from None
        except TokenUnavailable as exc:
            raise UpstreamUnavailable(str(exc)) from None

    async def aclose(self) -> None:
        await self.client.aclose()
        with trio.CancelScope(shield=True):  # quick, and needed even when the edge is being cancelled
            await trio.to_thread.run_sync(self.blocking.close)
        if self.auth is not None:
            await self.auth.fetcher.aclose()


@asynccontextmanager
async def open_upstream(settings: EdgeSettings, metrics: EdgeMetrics, **client_args: Any) -> AsyncIterator[Upstream]:
    """An :class:`Upstream` for ``settings.upstream``; ``client_args`` go to ``httpx.AsyncClient`` (tests pass
    ``transport=httpx.MockTransport(...)``); the blocking client for blob bodies gets the same ``transport``
    (bridged to the event loop) and ``event_hooks``."""
    timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
    metadata_timeout = httpx.Timeout(settings.metadata_timeout, connect=settings.connect_timeout)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=32)
    credentials = None
    if settings.identity_username:
        credentials = (settings.identity_username, read_secret(settings.identity_password_file))
    fetcher = TokenFetcher(httpx.AsyncClient(timeout=metadata_timeout, follow_redirects=True, **client_args))
    auth = BearerChallengeAuth(fetcher, credentials)
    client = httpx.AsyncClient(
        base_url=settings.upstream_url, timeout=timeout, limits=limits, follow_redirects=True, auth=auth, **client_args
    )
    blocking = open_blocking_client(
        base_url=settings.upstream_url,
        timeout=timeout,
        limits=limits,
        auth=auth,
        transport=client_args.get("transport"),
        event_hooks=client_args.get("event_hooks"),
    )
    upstream = Upstream(client, blocking, metrics, metadata_timeout, auth, settings.docker_hub)
    try:
        yield upstream
    finally:
        await upstream.aclose()
