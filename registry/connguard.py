"""One broken connection must not take the server down: a guard around hypercorn's per-connection task.

hypercorn 0.18's trio worker runs each connection in a task of ``trio.serve_listeners``; an exception that
escapes it ends the whole server. A client that sends bytes after a ``Connection: close`` request while the
response is being closed makes hypercorn write a 400 and half-close the socket from two tasks at once
(``trio.BusyResourceError``), found by the network fuzzer (tests/fuzz). :func:`install` makes hypercorn use a
``TCPServer`` whose ``run`` logs such an error and closes that one connection instead. Cancellation passes.
``edge/connguard.py`` is the edge's twin (the edge may not import this package).
"""

from __future__ import annotations

import logging
from contextlib import suppress

import hypercorn.trio.run as hypercorn_run
from hypercorn.trio.tcp_server import TCPServer

log = logging.getLogger("hypercorn.error")


class GuardedTCPServer(TCPServer):
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
