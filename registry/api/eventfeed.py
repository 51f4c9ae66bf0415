"""``GET /api/v1/events``: the outbox as an authenticated, resumable feed (long-poll JSON or server-sent events).

The feed only reads the outbox; it never moves the in-process subscribers' cursors. Consumers keep their
own cursor (the ``cursor`` of the last answer, or the ``id:`` of the last server-sent event) and pass it
back as ``after`` or ``Last-Event-ID``: delivery is at least once, in commit order. Callers see only events
of repositories they may pull (admins see all); with ``auth.mode = "none"`` everyone sees everything, as
everyone may pull everything. The schema is documented in docs/events.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import trio
from quart import Blueprint, Response, request

from config.settings import EventSettings
from registry.api.auth import Authorizer, AuthResult
from registry.api.management import authenticate
from registry.events import CommitSignal
from registry.iam.policy import namespace_permissions
from registry.oci import errors as e
from registry.oci.names import namespace_of
from registry.storage.outbox_window import SqliteOutboxWindow
from registry.storage.records import Event

log = logging.getLogger("registry.api")

# Outbox kinds the feed exposes; blob events are bookkeeping (the cursor still moves past them).
FEED_TYPES = frozenset({"manifest.pushed", "manifest.deleted", "tag.moved", "tag.deleted"})
SCAN_BATCH = 500  # outbox rows read per query
SCAN_ROUNDS = 20  # queries per answer at most: a long run of invisible events ends an answer early
POLL_SECONDS = 1.0  # commits by other processes (the CLI) are seen by polling
KEEPALIVE_SECONDS = 15.0
LIMIT_DEFAULT, LIMIT_MAX = 100, 1000


def event_json(event: Event) -> dict[str, Any]:
    """One event as the feed shows it (docs/events.md, "Event schema")."""
    doc: dict[str, Any] = {
        "id": str(event.id),
        "type": event.kind,
        "time": datetime.fromtimestamp(event.at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "repository": event.repo,
        "digest": event.digest,
        "tag": event.tag,
    }
    if event.kind == "manifest.pushed":
        doc["mediaType"] = event.data
    elif event.kind == "tag.moved":
        doc["previousDigest"] = event.data
    elif event.kind == "manifest.deleted":
        doc["reason"] = event.data or "api"
    return doc


@dataclass
class FeedQuery:
    """One request's view: which events it may see and where it stands."""

    visible: Callable[[Event], bool]
    cursor: int
    limit: int


class EventFeed:
    """Reads visible events after a cursor, waiting for commits up to a deadline."""

    def __init__(self, window: SqliteOutboxWindow, signal: CommitSignal) -> None:
        self.window = window
        self.signal = signal

    async def scan(self, query: FeedQuery) -> tuple[list[Event], bool]:
        """Visible events after ``query.cursor`` (which advances past every row read). Returns the events
        and whether rows remain to be read."""
        found: list[Event] = []
        for _ in range(SCAN_ROUNDS):
            rows = await self.window.events_after(query.cursor, SCAN_BATCH)
            for row in rows:
                query.cursor = row.id
                if query.visible(row):
                    found.append(row)
                    if len(found) >= query.limit:
                        return found, True
            if found or len(rows) < SCAN_BATCH:
                return found, False
        return found, True

    async def wait(self, query: FeedQuery, deadline: float) -> list[Event]:
        """The next visible events, waiting until ``deadline`` (trio clock) for some to be committed."""
        while True:
            waiter = self.signal.waiter()
            found, more = await self.scan(query)
            remaining = deadline - trio.current_time()
            if found or more or remaining <= 0 or self.signal.closed:
                return found
            with trio.move_on_after(min(remaining, POLL_SECONDS)):
                await waiter.wait()


def _sse(event: Event) -> bytes:
    return f"id: {event.id}\nevent: {event.kind}\ndata: {json.dumps(event_json(event))}\n\n".encode()


def make_event_feed(
    window: SqliteOutboxWindow, signal: CommitSignal, auth: Authorizer | None, settings: EventSettings
) -> Blueprint:
    api = Blueprint("events", __name__, url_prefix="/api/v1")
    feed = EventFeed(window, signal)

    @api.errorhandler(e.RegistryError)
    async def registry_error(err: e.RegistryError) -> Response:
        body = json.dumps({"errors": [{"code": err.code.code, "message": err.message or err.code.message}]})
        return Response(body, err.status, content_type="application/json", headers=err.headers or {})

    async def rights(namespace: str | None) -> AuthResult | None:
        """None: the caller sees every event (admin, or no auth on this registry)."""
        if auth is None:
            return None
        identity = await authenticate(auth)
        if identity.admin:
            return None
        flags = await auth.store.namespace_flags()
        if namespace is not None:
            public = flags.get(namespace)
            if public is None or "pull" not in namespace_permissions(identity, namespace, public):
                raise e.RegistryError(e.DENIED, "the events of this namespace need pull on it")
        return AuthResult(identity, None, flags)

    def number(name: str, raw: str | None, default: float, low: float, high: float) -> float:
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise e.RegistryError(e.INVALID, f"{name} must be a number") from None
        if value != value:  # NaN
            raise e.RegistryError(e.INVALID, f"{name} must be a number")
        return min(max(value, low), high)

    async def start_cursor() -> int:
        raw = request.headers.get("Last-Event-ID") or request.args.get("after") or "0"
        if raw == "latest":
            return await window.head()
        if not raw.isdigit() or len(raw) > 19:
            raise e.RegistryError(e.INVALID, 'after/Last-Event-ID must be a cursor from this feed or "latest"')
        return int(raw)

    @api.get("/events")
    async def events() -> Response:
        namespace = request.args.get("namespace") or None
        caller = await rights(namespace)
        stream = "text/event-stream" in request.headers.get("Accept", "")
        max_wait = settings.feed_max_wait_seconds
        wait = number("wait", request.args.get("wait"), max_wait if stream else 0.0, 0.0, max_wait)
        limit = int(number("limit", request.args.get("limit"), LIMIT_DEFAULT, 1, LIMIT_MAX))

        def visible(event: Event) -> bool:
            if event.kind not in FEED_TYPES:
                return False
            if namespace is not None and namespace_of(event.repo) != namespace:
                return False
            return caller is None or caller.allows(event.repo, "pull")

        query = FeedQuery(visible, await start_cursor(), limit)
        truncated = query.cursor < await window.pruned_through()
        deadline = trio.current_time() + wait
        if not stream:
            found = await feed.wait(query, deadline)
            doc = {"events": [event_json(ev) for ev in found], "cursor": str(query.cursor), "truncated": truncated}
            return Response(json.dumps(doc), 200, content_type="application/json")

        async def body() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n\n"
            if truncated:
                yield b'event: truncated\ndata: {"truncated": true}\n\n'
            sent, beat = query.cursor, trio.current_time()
            while True:
                found = await feed.wait(query, min(deadline, trio.current_time() + KEEPALIVE_SECONDS))
                for event in found:
                    yield _sse(event)
                if query.cursor != sent:
                    if not found or found[-1].id != query.cursor:
                        yield f"id: {query.cursor}\n\n".encode()  # moved past invisible events
                    sent = query.cursor
                now = trio.current_time()
                if now >= deadline or feed.signal.closed:
                    return
                if not found and now - beat >= KEEPALIVE_SECONDS:
                    yield b": keepalive\n\n"
                    beat = now

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        response = Response(body(), 200, content_type="text/event-stream", headers=headers)
        response.timeout = None  # the stream ends at its own deadline (at most feed_max_wait_seconds)
        return response

    return api
