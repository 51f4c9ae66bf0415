"""Blob bodies from the upstream, received in a worker thread by a blocking ``httpx.Client``.

Why a thread: on the event loop, httpx/httpcore hand the body over in 64 KiB pieces with a trio round trip each,
which kept a cold fill at ~150 MiB/s (docs/edge.md, "Throughput"). A blocking client in a worker thread receives,
writes and hashes without touching the loop; ``hashlib``, ``recv`` and ``write`` release the GIL on large
buffers, so the loop keeps serving meanwhile.

Contract:

* :func:`send_get` sends ``GET`` in a worker thread and returns an :class:`UpstreamBody` once the headers are in
  (the client follows redirects — httpx drops ``Authorization`` on a cross-host one — and runs its ``auth``
  flow; ``edge.upstreamauth.BearerChallengeAuth.sync_auth_flow`` does its token work on the event loop through
  ``trio.from_thread``). If the caller is cancelled while the headers are awaited, the thread is abandoned and
  closes the response itself when it arrives.
* :meth:`UpstreamBody.copy_into` receives the body in a worker thread and writes and hashes it in pieces of at
  least :data:`WRITE_BYTES`; after each write it reports the byte count to the event loop with
  ``TrioToken.run_sync_soon`` (never blocking the thread on the loop). On cancellation the thread is told to
  stop (a flag checked between reads, and the socket shut down to end a blocked ``recv``), and the call returns
  only once the thread has finished, so the caller may close the file descriptor right after.
* :meth:`UpstreamBody.aclose` closes the response (in a worker thread).

This module owns no cache state and translates no errors (``edge.upstream`` does): httpx exceptions raised in
the thread come out of these calls unchanged.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import trio

from registry.oci.digest import Hasher

WRITE_BYTES = 1024 * 1024  # write, hash and report progress once this much has arrived
ERROR_BODY_BYTES = 64 * 1024
T = TypeVar("T")
Hook = Callable[..., Awaitable[None]]


class OversizedBody(Exception):
    """The upstream sent more bytes than the size it announced."""


class FetchStopped(Exception):
    """The worker thread was told to stop (its caller was cancelled)."""


class ThreadBridgeTransport(httpx.BaseTransport):
    """An ``httpx.AsyncBaseTransport`` (tests inject ``httpx.MockTransport``) used by the blocking client from a
    trio worker thread: every call goes back to the event loop through ``trio.from_thread.run``."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self.transport = transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = trio.from_thread.run(self.transport.handle_async_request, request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_BridgedStream(response.stream),
            extensions=response.extensions,
        )


class _BridgedStream(httpx.SyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self.stream = stream

    def __iter__(self) -> Iterator[bytes]:
        pieces = self.stream.__aiter__()

        async def following() -> bytes | None:
            try:
                return await pieces.__anext__()
            except StopAsyncIteration:
                return None

        while (piece := trio.from_thread.run(following)) is not None:
            yield piece

    def close(self) -> None:
        trio.from_thread.run(self.stream.aclose)


def bridged_hooks(hooks: dict[str, list[Hook]]) -> dict[str, list[Callable[[Any], None]]]:
    """httpx event hooks written for the async client, run on the event loop for the blocking client."""

    def bridge(hook: Hook) -> Callable[[Any], None]:
        return lambda message: trio.from_thread.run(hook, message)

    return {name: [bridge(hook) for hook in functions] for name, functions in hooks.items()}


def open_blocking_client(
    *,
    base_url: str,
    timeout: httpx.Timeout,
    limits: httpx.Limits,
    auth: httpx.Auth | None,
    transport: httpx.AsyncBaseTransport | None = None,
    event_hooks: dict[str, list[Hook]] | None = None,
) -> httpx.Client:
    """The blocking client for blob bodies, configured as the async one (``transport``: an injected async
    transport, bridged)."""
    return httpx.Client(
        base_url=base_url,
        timeout=timeout,
        limits=limits,
        follow_redirects=True,
        auth=auth,
        transport=ThreadBridgeTransport(transport) if transport is not None else None,
        event_hooks=bridged_hooks(event_hooks or {}),
    )


def _shutdown(response: httpx.Response) -> None:
    """End a ``recv`` blocked on ``response``'s connection (the socket is shut down, not closed: the thread that
    owns the connection closes it)."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _write_pieces(fd: int, pieces: list[bytes], hasher: Hasher) -> None:
    size = sum(len(piece) for piece in pieces)
    written = os.writev(fd, pieces)
    if written < size:
        rest = memoryview(b"".join(pieces))[written:]
        while rest:
            rest = rest[os.write(fd, rest) :]
    for piece in pieces:
        hasher.update(piece)


class UpstreamBody:
    """An upstream response whose body is still on the wire. Use from the event loop only."""

    def __init__(self, response: httpx.Response, limiter: trio.CapacityLimiter) -> None:
        self.response = response
        self.status_code = response.status_code
        self.headers = response.headers
        self._limiter = limiter
        self._stopped = threading.Event()

    async def read_error(self) -> bytes:
        """The (error) body, at most :data:`ERROR_BODY_BYTES`."""

        def read() -> bytes:
            body = bytearray()
            for piece in self.response.iter_bytes():
                body += piece
                if len(body) >= ERROR_BODY_BYTES:
                    break
            return bytes(body[:ERROR_BODY_BYTES])

        return await trio.to_thread.run_sync(read, limiter=self._limiter)

    async def copy_into(self, fd: int, hasher: Hasher, limit: int | None, progress: Callable[[int], None]) -> int:
        """Receive the body into ``fd`` (from its current offset), hashing it; ``progress(total)`` runs on the
        event loop after each write. Returns the byte count.

        Raises:
            OversizedBody: more than ``limit`` bytes arrived (nothing past ``limit`` is written).
            trio.Cancelled: the caller was cancelled; the thread has stopped when this is raised.
            httpx.HTTPError: whatever the client raised (a timeout, a reset connection...).
        """
        token = trio.lowlevel.current_trio_token()
        stopped = self._stopped

        def copy() -> int:
            total = pending_bytes = 0
            pending: list[bytes] = []
            for piece in self.response.iter_raw():
                if stopped.is_set():
                    raise FetchStopped()
                total += len(piece)
                if limit is not None and total > limit:
                    raise OversizedBody(f"the upstream sent more than {limit} bytes")
                pending.append(piece)
                pending_bytes += len(piece)
                if pending_bytes >= WRITE_BYTES:
                    _write_pieces(fd, pending, hasher)
                    token.run_sync_soon(progress, total)
                    pending.clear()
                    pending_bytes = 0
            if stopped.is_set():
                raise FetchStopped()
            _write_pieces(fd, pending, hasher)
            token.run_sync_soon(progress, total)
            return total

        return await self._in_thread(copy)

    async def _in_thread(self, fn: Callable[[], T]) -> T:
        """``fn()`` in a worker thread that the caller waits for even when cancelled; the cancellation stops it."""
        finished = False

        async def stop_on_cancel() -> None:
            try:
                await trio.sleep_forever()
            finally:
                if not finished:
                    self._stopped.set()
                    _shutdown(self.response)

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stop_on_cancel)
                try:
                    return await trio.to_thread.run_sync(fn, limiter=self._limiter)
                except Exception:
                    if self._stopped.is_set():  # a cancellation stopped the thread: raise the cancellation
                        await trio.lowlevel.checkpoint()
                    raise
                finally:
                    finished = not self._stopped.is_set()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:  # the nursery wraps the body's exception; only the body raises
            leaf: BaseException = group
            while isinstance(leaf, BaseExceptionGroup):
                leaf = leaf.exceptions[0]
            raise leaf from None

    async def aclose(self) -> None:
        """Close the response (its connection returns to the pool if the body was read to the end)."""
        await trio.to_thread.run_sync(self.response.close, limiter=self._limiter)


async def send_get(
    client: httpx.Client, path: str, headers: dict[str, str], limiter: trio.CapacityLimiter
) -> UpstreamBody:
    """``GET path`` with the body left on the wire (see the module docstring for cancellation)."""
    abandoned = threading.Event()
    lock = threading.Lock()
    delivered: list[httpx.Response] = []

    def send() -> httpx.Response:
        response = client.send(client.build_request("GET", path, headers=headers), stream=True)
        with lock:
            drop = abandoned.is_set()
            if not drop:
                delivered.append(response)
        if drop:
            response.close()
            raise FetchStopped()
        return response

    try:
        response = await trio.to_thread.run_sync(send, abandon_on_cancel=True, limiter=limiter)
    except trio.Cancelled:
        with lock:
            abandoned.set()
            late = list(delivered)  # the thread finished just as the caller was cancelled
        if late:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(late[0].close, limiter=limiter)
        raise
    return UpstreamBody(response, limiter)
