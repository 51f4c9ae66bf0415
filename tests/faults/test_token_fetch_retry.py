"""The edge's token fetch survives the primary closing a kept-alive connection under it (once), found by the
edge access matrix (tests/iam/test_edge_matrix.py) as a 503 "token service unavailable: RemoteProtocolError"."""

from __future__ import annotations

import httpx
import pytest

from edge.upstreamauth import TokenFetcher, TokenUnavailable
from tests.faults.conftest import survived


def _transport(failures: int) -> tuple[httpx.MockTransport, list[int]]:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) <= failures:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return httpx.Response(200, json={"token": "a.b.c", "expires_in": 300})

    return httpx.MockTransport(handler), calls


async def test_a_connection_closed_under_the_token_fetch_is_retried_once() -> None:
    transport, calls = _transport(failures=1)
    async with httpx.AsyncClient(transport=transport) as client:
        issued = await TokenFetcher(client).fetch("http://primary.test/token", "registry", "repository:a/b:pull", None)
    assert issued.token == "a.b.c" and len(calls) == 2
    survived("edge: token service connection closed once")


async def test_a_token_service_that_keeps_failing_is_unavailable() -> None:
    transport, calls = _transport(failures=5)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(TokenUnavailable):
            await TokenFetcher(client).fetch("http://primary.test/token", "registry", None, None)
    assert len(calls) == 2
