"""The primary's management API as the edge uses it: the event feed (``GET /api/v1/events``) and pull reports
(``POST /api/v1/pulls``), with the edge's own credential.

Authentication is HTTP Basic with the configured identity credential (``identity_username`` and
``identity_password_file``); without one the requests are anonymous, which an open primary
(``auth.mode = "none"``) accepts for the feed. Failures become :class:`PrimaryApiError`; this module keeps no
state beyond its HTTP client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from edge.settings import EdgeSettings, read_secret

MAX_ANSWER_BYTES = 8 * 1024 * 1024


class PrimaryApiError(Exception):
    """The primary could not be reached or refused the request (``status`` 0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class FeedPage:
    events: list[dict[str, Any]]
    cursor: str
    truncated: bool


class PrimaryApi:
    """Calls to ``{upstream}/api/v1``. Open with :func:`open_primary_api`."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def _call(self, method: str, path: str, seconds: float, **kwargs: Any) -> Any:
        try:
            response = await self.client.request(method, f"/api/v1{path}", timeout=seconds, **kwargs)
        except httpx.HTTPError as exc:
            raise PrimaryApiError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            status = response.status_code
            raise PrimaryApiError(f"{method} {path}: HTTP {status} {response.text[:200]}", status)
        if len(response.content) > MAX_ANSWER_BYTES:
            raise PrimaryApiError(f"{method} {path}: answer over {MAX_ANSWER_BYTES} bytes", response.status_code)
        try:
            return response.json()
        except ValueError:
            raise PrimaryApiError(f"{method} {path}: not JSON", response.status_code) from None

    async def events(self, after: str, namespace: str | None, wait: float) -> FeedPage:
        """One long poll of the event feed (docs/events.md).

        Raises:
            PrimaryApiError: unreachable, an error status, or a malformed answer.
        """
        params: dict[str, str] = {"after": after, "wait": str(wait)}
        if namespace:
            params["namespace"] = namespace
        doc = await self._call("GET", "/events", wait + 30, params=params)
        valid = isinstance(doc, dict) and isinstance(doc.get("events"), list)
        if not valid or not isinstance(doc.get("cursor"), str):
            raise PrimaryApiError("GET /events: unexpected answer")
        return FeedPage(list(doc["events"]), doc["cursor"], bool(doc.get("truncated", False)))

    async def report_pulls(self, pulls: Sequence[tuple[str, str, float]]) -> int:
        """``POST /api/v1/pulls`` with ``(repository, digest, time)`` entries. Returns how many were accepted.

        Raises:
            PrimaryApiError: as :meth:`events`.
        """
        body = {"pulls": [{"repository": r, "digest": d, "time": t} for r, d, t in pulls]}
        doc = await self._call("POST", "/pulls", 30, json=body)
        return int(doc.get("accepted", 0)) if isinstance(doc, dict) else 0

    async def aclose(self) -> None:
        await self.client.aclose()


@asynccontextmanager
async def open_primary_api(settings: EdgeSettings, **client_args: Any) -> AsyncIterator[PrimaryApi]:
    """A :class:`PrimaryApi` for ``settings.upstream_url``; ``client_args`` go to ``httpx.AsyncClient``."""
    auth = None
    if settings.identity_username:
        auth = httpx.BasicAuth(settings.identity_username, read_secret(settings.identity_password_file))
    timeout = httpx.Timeout(30.0, connect=settings.connect_timeout)
    client = httpx.AsyncClient(base_url=settings.upstream_url, auth=auth, timeout=timeout, **client_args)
    api = PrimaryApi(client)
    try:
        yield api
    finally:
        await api.aclose()
