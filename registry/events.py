"""Domain events: delivered from the outbox to in-process subscribers, at least once, in order.

The storage layer writes each event into the ``outbox`` table in the same transaction as the change it
describes, so an event exists if and only if its change committed. :class:`OutboxRelay` reads events
after each subscriber's stored cursor, hands them over, and advances the cursor only after the
subscriber returned: a crash in between redelivers (at-least-once). Subscribers (audit, extensions, the
edge feed) are registered by the composition root; core code never imports them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import trio

from registry.storage.interfaces import Outbox
from registry.storage.records import Event

log = logging.getLogger("registry.events")


class Subscriber(Protocol):
    """Receives events. ``name`` keys its cursor, so it must be stable across restarts."""

    name: str

    async def handle(self, event: Event) -> None:
        """Process one event. Raising makes the relay retry the same event later."""


class OutboxRelay:
    """Delivers outbox events to subscribers; wake it with :meth:`notify` after a commit."""

    def __init__(self, outbox: Outbox, subscribers: Sequence[Subscriber], poll_interval: float = 5.0) -> None:
        self.outbox = outbox
        self.subscribers = list(subscribers)
        self.poll_interval = poll_interval
        self._wake = trio.Event()

    def notify(self) -> None:
        """Called (from the event loop) after a metadata commit."""
        self._wake.set()

    async def deliver_pending(self, batch: int = 500) -> int:
        """Deliver everything currently in the outbox to every subscriber. Returns events handed over."""
        delivered = 0
        for sub in self.subscribers:
            cursor = await self.outbox.cursor(sub.name)
            while True:
                events = await self.outbox.events_after(cursor, batch)
                if not events:
                    break
                for event in events:
                    await sub.handle(event)
                    cursor = event.id
                    delivered += 1
                await self.outbox.set_cursor(sub.name, cursor)
        return delivered

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled: deliver on every wake-up and at least every ``poll_interval`` (commits
        from other processes, such as the CLI, are only seen by polling)."""
        task_status.started()
        while True:
            self._wake = trio.Event()
            try:
                await self.deliver_pending()
            except Exception:
                log.exception("event delivery failed; retrying in %.0fs", self.poll_interval)
            with trio.move_on_after(self.poll_interval):
                await self._wake.wait()


class CommitSignal:
    """Wakes every waiter after a metadata commit in this process (the event feed's long polls).

    Take :meth:`waiter` *before* reading the outbox, then wait on it: a commit in between is not missed.
    """

    def __init__(self) -> None:
        self._event = trio.Event()
        self.closed = False

    def close(self) -> None:
        """The server is draining: wake every waiter; long polls and event streams answer and end now."""
        self.closed = True
        self.notify()

    def notify(self) -> None:
        """Called (from the event loop) after a metadata commit."""
        event, self._event = self._event, trio.Event()
        event.set()

    def waiter(self) -> trio.Event:
        return self._event
