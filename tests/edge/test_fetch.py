"""Blob bodies received in a worker thread (edge.fetch): the thread stops when the edge shuts down — on a real
socket stalled mid-body and on a held in-process upstream — and a fill through the blocking client runs the
token flow and drops ``Authorization`` on a cross-host redirect.

Auth modes: none (the stalled and the held upstream); the edge's own identity credential (the redirect test, an
upstream that cannot run here: httpx.MockTransport plays the registry, its token service and a blob store)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import httpx
import trio

from edge.app import open_edge
from edge.settings import EdgeSettings
from registry.oci.digest import Digest
from tests.edge.fakeupstream import FakeClock, FakeUpstream, open_test_edge, sha256

MIB = 1024 * 1024
REPO = "team/app"


async def _serve_stalled(data: bytes, sent: int, task_status: trio.TaskStatus[int]) -> None:
    """An HTTP/1.1 upstream that answers any request with ``len(data)`` announced, sends ``sent`` bytes, and
    then neither sends nor closes."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def handle(stream: trio.SocketStream) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        with contextlib.suppress(trio.BrokenResourceError):  # the edge drops the connection when it stops
            await stream.receive_some(65536)
            await stream.send_all(head + data[:sent])
            await trio.sleep_forever()

    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)


async def test_shutdown_stops_a_fill_stalled_on_a_real_socket(tmp_path: Path) -> None:
    data = os.urandom(8 * MIB)
    digest = Digest.parse(sha256(data))
    async with trio.open_nursery() as servers:
        port = await servers.start(_serve_stalled, data, 3 * MIB)
        settings = EdgeSettings(upstream=f"http://127.0.0.1:{port}", cache_dir=str(tmp_path / "cache"), read_timeout=60)
        with trio.fail_after(15):  # far below the 60 s read timeout: the thread was stopped, not timed out
            async with open_edge(settings, clock=FakeClock()) as app:
                body = await app.ctx.blobs.get(REPO, digest, None)
                stream = body.stream()
                received = 0
                while received < 2 * MIB:
                    received += len(await stream.__anext__())
                await stream.aclose()
                body.close()
                fill = app.ctx.blobs.flights.get(digest)
                assert fill is not None
                while fill.written < 2 * MIB:
                    await trio.sleep(0.01)
                await trio.sleep(0.5)  # the rest of what was sent arrives; the fill's thread waits in recv
        servers.cancel_scope.cancel()
    assert list((tmp_path / "cache" / "tmp").iterdir()) == [], "the stopped fill left no temp file"


async def test_shutdown_stops_a_fill_held_by_an_in_process_upstream(tmp_path: Path) -> None:
    upstream = FakeUpstream()
    data = os.urandom(3 * MIB)
    digest = Digest.parse(upstream.add_blob(REPO, data))
    upstream.hold = True
    with trio.fail_after(15):
        async with open_test_edge(tmp_path, upstream) as ctx:
            body = await ctx.blobs.get(REPO, digest, None)
            body.close()
            await upstream.half_sent.wait()
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []
    assert upstream.count("GET", "/blobs/") == 1


async def test_a_fill_gets_a_token_and_drops_it_on_a_cross_host_redirect(tmp_path: Path) -> None:
    blobs = {sha256(blob): blob for blob in (os.urandom(2 * MIB), os.urandom(1000))}
    seen: list[tuple[str, str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        host, path = request.url.host, request.url.path
        seen.append((host, path, request.headers.get("authorization")))
        if host == "auth.test":
            assert request.headers["authorization"].startswith("Basic ")
            return httpx.Response(200, json={"token": "edge-token", "expires_in": 300})
        if host == "storage.test":
            blob = blobs[request.url.params["digest"]]
            return httpx.Response(200, headers={"Content-Length": str(len(blob))}, content=blob)
        if request.headers.get("authorization") != "Bearer edge-token":
            challenge = f'Bearer realm="https://auth.test/token",service="registry.test",scope="repository:{REPO}:pull"'
            return httpx.Response(401, headers={"WWW-Authenticate": challenge}, json={"errors": []})
        digest = path.rsplit("/", 1)[1]
        return httpx.Response(307, headers={"Location": f"https://storage.test/b?digest={digest}"})

    secret = tmp_path / "password"
    secret.write_text("s3cret")
    settings = EdgeSettings(
        upstream="https://registry.test",
        cache_dir=str(tmp_path / "cache"),
        identity_username="edge-node",
        identity_password_file=str(secret),
    )
    async with open_edge(settings, clock=FakeClock(), transport=httpx.MockTransport(handler)) as app:
        for digest, blob in blobs.items():
            body = await app.ctx.blobs.get(REPO, Digest.parse(digest), None)
            received = bytearray()
            try:
                async for piece in body.stream():
                    received += piece
            finally:
                body.close()
            assert received == blob
            with trio.fail_after(10):
                while len(app.ctx.blobs.flights):
                    await trio.sleep(0.01)
            assert await app.ctx.cache.contains(Digest.parse(digest))
    assert [host for host, _, _ in seen].count("auth.test") == 1, "the second fill reused the cached token"
    assert all(auth is None for host, _, auth in seen if host == "storage.test"), "no token to the blob store"
    sent = [auth for host, _, auth in seen if host == "registry.test"]
    assert sent == [None, "Bearer edge-token", "Bearer edge-token"], "challenged once, then sent pre-emptively"
