"""The upstream registry client: one ``httpx.AsyncClient`` and the translation of its failures, done once here.

Transport errors, timeouts, 429 and 5xx become :class:`UpstreamUnavailable` (the edge may then serve stale);
other error answers become a :class:`~registry.oci.errors.RegistryError` with the upstream's code and status.
This module owns no cache state. Phase 1: the upstream runs without authentication.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from edge.metrics import EdgeMetrics
from edge.settings import EdgeSettings
from registry.oci import errors as e
from registry.oci import mediatypes as mt

log = logging.getLogger("edge.upstream")

MANIFEST_ACCEPT = ", ".join(
    [mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST, mt.DOCKER_SCHEMA1_SIGNED]
)
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


class Upstream:
    """The upstream registry at ``base_url``. Open with :func:`open_upstream`."""

    def __init__(self, client: httpx.AsyncClient, metrics: EdgeMetrics, metadata_timeout: httpx.Timeout) -> None:
        self.client = client
        self.metrics = metrics
        self.metadata_timeout = metadata_timeout

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

    @asynccontextmanager
    async def stream(self, path: str, headers: dict[str, str] | None = None) -> AsyncIterator[httpx.Response]:
        """``GET path`` with the body left on the wire; the caller counts ``upstream_bytes``.

        Raises:
            UpstreamUnavailable: transport error or timeout (before the headers or while the caller reads the
                body inside the ``async with``), 429, 5xx.
        """
        self.metrics.upstream_requests += 1
        try:
            async with self.client.stream("GET", path, headers=headers) as response:
                yield self._check(response)
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"{type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        await self.client.aclose()


@asynccontextmanager
async def open_upstream(settings: EdgeSettings, metrics: EdgeMetrics, **client_args: Any) -> AsyncIterator[Upstream]:
    """An :class:`Upstream` for ``settings.upstream``; ``client_args`` go to ``httpx.AsyncClient`` (tests pass
    ``transport=httpx.MockTransport(...)``)."""
    timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=32)
    client = httpx.AsyncClient(
        base_url=settings.upstream_url, timeout=timeout, limits=limits, follow_redirects=True, **client_args
    )
    upstream = Upstream(client, metrics, httpx.Timeout(settings.metadata_timeout, connect=settings.connect_timeout))
    try:
        yield upstream
    finally:
        await upstream.aclose()
