"""The connection guard (registry/connguard.py, edge/connguard.py): an exception escaping one connection's
task is logged and that connection closed; it no longer ends the server (found by the network fuzzer)."""

from __future__ import annotations

from typing import Any

import hypercorn.trio.run as hypercorn_run
import pytest
import trio
from hypercorn.trio.tcp_server import TCPServer

from edge import connguard as edge_guard
from registry import connguard as registry_guard


class _Stream:
    closed = False

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.parametrize("guard", [registry_guard, edge_guard])
async def test_a_failing_connection_is_closed_not_raised(guard: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: TCPServer) -> None:
        raise trio.BusyResourceError("another task is currently sending data on this SocketStream")

    monkeypatch.setattr(TCPServer, "run", broken)
    monkeypatch.setattr(hypercorn_run, "TCPServer", TCPServer)
    guard.install()
    assert hypercorn_run.TCPServer is guard.GuardedTCPServer
    server = object.__new__(guard.GuardedTCPServer)
    server.stream = _Stream()
    await server.run()
    assert server.stream.closed


async def test_cancellation_passes_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    async def forever(self: TCPServer) -> None:
        await trio.sleep_forever()

    monkeypatch.setattr(TCPServer, "run", forever)
    server = object.__new__(registry_guard.GuardedTCPServer)
    server.stream = _Stream()
    with trio.move_on_after(0.01) as scope:
        await server.run()
    assert scope.cancelled_caught and not server.stream.closed
