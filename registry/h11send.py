"""One socket write for a small answer: hypercorn writes an HTTP/1.1 response's head and its body separately.

hypercorn's h11 protocol turns the ASGI ``http.response.start`` into one socket write (the status line and
headers) and each ``http.response.body`` into another. For a manifest or an error envelope that is two
``send`` calls, two trips through trio's ``send_all`` and two TCP segments for a few hundred bytes; the
``send`` syscalls alone were ~37 % of the event loop's samples for a manifest GET (docs/performance.md).

:class:`CoalescingH11Protocol` holds the head of an answer whose ``Content-Length`` is at most
:data:`HOLD_MAX` and sends it together with what follows: the body, or for a HEAD or an empty body the end of
the message. Answers without a length (event streams, chunked) and large ones are written as before, so an
event stream's head still leaves at once. The bytes on the wire are unchanged.
"""

from __future__ import annotations

import h11
import hypercorn.protocol as hypercorn_protocol
from hypercorn.events import RawData
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.events import StreamClosed
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.typing import H11SendableEvent

HOLD_MAX = 64 * 1024


def _held_back(event: H11SendableEvent) -> bool:
    """A final answer with a small declared length: its body (if any) is already on its way."""
    if not isinstance(event, h11.Response):
        return False
    for name, value in event.headers:
        if name == b"content-length":
            return value.isdigit() and int(value) <= HOLD_MAX
    return False


class CoalescingH11Protocol(H11Protocol):
    held = b""  # the head of the current answer, not yet written

    def _encode(self, event: H11SendableEvent) -> bytes:
        """As hypercorn's ``_send_h11_event``: nothing to send once the peer broke the protocol."""
        try:
            return self.connection.send(event) or b""
        except h11.LocalProtocolError:
            if self.connection.their_state != h11.ERROR:
                raise
            return b""

    async def _send_h11_event(self, event: H11SendableEvent) -> None:
        if _held_back(event):
            self.held += self._encode(event)
            return
        if not self.held:
            await super()._send_h11_event(event)
            return
        await self._flush(self._encode(event))

    async def _flush(self, more: bytes = b"") -> None:
        data, self.held = self.held + more, b""
        await self.send(RawData(data=data))

    async def stream_send(self, event: StreamEvent) -> None:
        if self.held and isinstance(event, StreamClosed):  # the app ended without its body: head as before
            await self._flush()
        await super().stream_send(event)


def install() -> None:
    """Make hypercorn's protocol wrapper use :class:`CoalescingH11Protocol` (idempotent)."""
    setattr(hypercorn_protocol, "H11Protocol", CoalescingH11Protocol)  # noqa: B010 - the name ProtocolWrapper uses
