"""registry.h11send: a small answer leaves in one socket write (head and body together); event streams and
large answers are written as before, so a stream's head still reaches the client before its first event."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import httpx
import hypercorn.trio.run as hypercorn_run
import pytest
import trio
from hypercorn.config import Config
from hypercorn.events import Event, RawData
from hypercorn.utils import wrap_app

from registry.connguard import GuardedTCPServer
from registry.connguard import install as guard_connections
from registry.h11send import HOLD_MAX
from registry.h11send import install as coalesce_answers

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

SMALL = b'{"schemaVersion": 2}' * 20
LARGE = b"x" * (HOLD_MAX + 1)


class Writes:
    """Every write hypercorn hands to the socket, in order."""

    def __init__(self) -> None:
        self.data: list[bytes] = []

    def of(self, status_line: bytes) -> list[bytes]:
        """The writes of the one answer that starts with ``status_line`` (up to the next answer)."""
        start = next(i for i, d in enumerate(self.data) if d.startswith(status_line))
        end = next((i for i in range(start + 1, len(self.data)) if self.data[i].startswith(b"HTTP/1.1 ")), None)
        return [d for d in self.data[start:end] if d]


class Server:
    def __init__(self, url: str, writes: Writes, release: trio.Event) -> None:
        self.url, self.writes, self.release = url, writes, release


async def app(scope: Scope, receive: Receive, send: Send, release: trio.Event) -> None:
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": message["type"] + ".complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    body = LARGE if path == "/large" else SMALL
    if path == "/stream":  # an event stream: no length, the first event comes later
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await release.wait()
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": False})
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if path == "/broken":
        raise RuntimeError("the app fails after the head")
    await send({"type": "http.response.body", "body": body, "more_body": False})


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    guard_connections()
    coalesce_answers()
    writes = Writes()

    class Recording(GuardedTCPServer):
        async def protocol_send(self, event: Event) -> None:
            if isinstance(event, RawData):
                writes.data.append(event.data)
            await super().protocol_send(event)

    monkeypatch.setattr(hypercorn_run, "TCPServer", Recording)
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = config.errorlog = None
    sockets = config.create_sockets()
    sockets.insecure_sockets[0].listen()  # connections queue before hypercorn starts accepting
    port = sockets.insecure_sockets[0].getsockname()[1]
    release, stop = trio.Event(), trio.Event()

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send, release)

    async with trio.open_nursery() as nursery:
        wrapped = wrap_app(asgi, config.wsgi_max_body_size, "asgi")
        serve = partial(hypercorn_run.worker_serve, wrapped, config, sockets=sockets, shutdown_trigger=stop.wait)
        nursery.start_soon(serve)
        yield Server(f"http://127.0.0.1:{port}", writes, release)
        stop.set()
        release.set()


async def test_a_small_answer_is_one_write(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        r = await client.get("/small")
        assert r.status_code == 200 and r.content == SMALL
        head = await client.head("/small")
        assert head.status_code == 200 and head.headers["content-length"] == str(len(SMALL))
    get_writes = server.writes.of(b"HTTP/1.1 200")
    assert len(get_writes) == 1 and get_writes[0].endswith(b"\r\n\r\n" + SMALL)
    head_writes = [d for d in server.writes.data[server.writes.data.index(get_writes[0]) + 1 :] if d]
    assert len(head_writes) == 1 and head_writes[0].endswith(b"\r\n\r\n")


async def test_a_large_answer_keeps_its_head_separate(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        r = await client.get("/large")
    assert r.content == LARGE
    writes = server.writes.of(b"HTTP/1.1 200")
    assert writes[0].endswith(b"\r\n\r\n") and b"".join(writes[1:]) == LARGE


async def test_an_event_stream_head_is_not_held(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        with trio.fail_after(10):
            async with client.stream("GET", "/stream") as r:
                assert r.status_code == 200  # the head arrived while the first event is still held back
                server.release.set()
                assert await r.aread() == b"data: 1\n\n"


async def test_an_app_failing_after_the_head_still_sends_it(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        with trio.fail_after(10), pytest.raises(httpx.RemoteProtocolError):
            await client.get("/broken")
    assert server.writes.of(b"HTTP/1.1 200")  # as without coalescing: the head, then the connection closes
