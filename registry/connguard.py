"""One broken connection must not take the server down: a guard around hypercorn's per-connection task.

hypercorn 0.18's trio worker runs each connection in a task of ``trio.serve_listeners``; an exception that
escapes it ends the whole server. A client that sends bytes after a ``Connection: close`` request while the
response is being closed makes hypercorn write a 400 and half-close the socket from two tasks at once
(``trio.BusyResourceError``), found by the network fuzzer (tests/fuzz). :func:`install` makes hypercorn use a
``TCPServer`` whose ``run`` logs such an error and closes that one connection instead. Cancellation passes.
``edge/connguard.py`` is the edge's twin (the edge may not import this package).

The same ``TCPServer`` also replaces hypercorn's keep-alive idle task with :class:`IdleTimer`: hypercorn starts a
new task for every request's idle period and cancels it when the next request arrives, which cost about a
quarter of a small request's time (a null app answering 500 bytes: ~970 → ~1,270 req/s without it,
docs/performance.md). The timer is one task per connection whose cancel-scope deadline moves instead. When
its deadline passes while a request already waits unread (the event loop was busy for longer than the
timeout), the connection is kept for the reader instead of being reset.
"""

from __future__ import annotations

import logging
import math
import select
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import hypercorn.trio.run as hypercorn_run
import trio
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import TrioSingleTask
from hypercorn.typing import TaskGroup

log = logging.getLogger("hypercorn.error")


class IdleTimer(TrioSingleTask):
    """hypercorn's idle task (``restart`` when the connection turns idle, ``stop`` when a request starts) as
    one watcher task per connection. Same behaviour: an idle connection is closed ``keep_alive_timeout``
    seconds after its last answer, or at once when the server shuts down (a busy one once it is answered)."""

    def __init__(self, server: TCPServer) -> None:
        super().__init__()
        self.server = server
        self.idle = False
        self.deadline = math.inf
        self.scope: trio.CancelScope | None = None
        self.answered: trio.Event | None = None  # set by restart while the server stops during a request
        self.running = False
        self.closed = False

    async def restart(self, task_group: TaskGroup, action: Callable[..., Any]) -> None:
        self.idle = True
        self.deadline = trio.current_time() + self.server.config.keep_alive_timeout
        if self.scope is not None:
            self.scope.deadline = self.deadline
        if self.answered is not None:
            self.answered.set()
        if not self.running and not self.closed:
            self.running = True
            task_group._nursery.start_soon(self._watch)  # type: ignore[attr-defined]  # as hypercorn does

    async def stop(self) -> None:
        self.idle = False
        self.deadline = math.inf
        if self.scope is not None:
            self.scope.deadline = math.inf

    def close(self) -> None:
        """The connection ended (the client went away or it was closed): the watcher ends without closing."""
        self.closed = True
        if self.scope is not None:
            self.scope.cancel()
        if self.answered is not None:
            self.answered.set()

    async def _watch(self) -> None:
        terminated = self.server.context.terminated
        while not self.closed:
            with trio.CancelScope(deadline=self.deadline) as scope:
                self.scope = scope
                await terminated.wait()
            self.scope = None
            if self.closed:
                return
            if self.idle:  # idle for keep_alive_timeout, or the server is shutting down
                if not terminated.is_set() and _input_waiting(self.server.stream):
                    # A request (or the client's close) arrived while the event loop was busy past the
                    # deadline: the reader handles it. Closing now would reset a request the client sent
                    # in time.
                    self.deadline = trio.current_time() + self.server.config.keep_alive_timeout
                    continue
                with trio.CancelScope(shield=True):
                    await self.server._initiate_server_close()
                return
            # The server is shutting down while a request is served: close once it is answered.
            self.answered = trio.Event()
            await self.answered.wait()
            self.answered = None


def _input_waiting(stream: Any) -> bool:
    """Bytes (or an end of stream) wait unread on the connection's socket."""
    sock = getattr(stream, "socket", None) or getattr(getattr(stream, "transport_stream", None), "socket", None)
    if sock is None:
        return False
    poller = select.poll()
    try:
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):  # already closed
        return False


class GuardedTCPServer(TCPServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.idle_timer = IdleTimer(self)
        self.idle_task = self.idle_timer

    async def _read_data(self) -> None:
        try:
            await super()._read_data()
        finally:
            self.idle_timer.close()

    async def run(self) -> None:
        try:
            await super().run()
        except Exception:
            log.exception("connection failed; closing it (the server goes on)")
            with suppress(Exception):
                await self.stream.aclose()


def install() -> None:
    """Make hypercorn's trio worker use :class:`GuardedTCPServer` (idempotent)."""
    setattr(hypercorn_run, "TCPServer", GuardedTCPServer)  # noqa: B010 - the name worker_serve looks up
