"""Single-flight fills in process, against a fake upstream: one upstream GET for concurrent misses, bytes flowing
before the fill ends, fills surviving their client, held-back last bytes on a digest mismatch, ranges, scoping.
Auth mode: none (a fake open upstream; the authorizer is not wired)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from edge.api.context import EdgeContext
from edge.blobs import BlobBody
from edge.fill import FillFailed
from registry.oci import errors as e
from registry.oci.digest import Digest
from tests.edge.fakeupstream import FakeUpstream, open_test_edge

REPO = "team/app"
MIB = 1024 * 1024


async def _read(body: BlobBody, into: bytearray | None = None) -> bytes:
    out = into if into is not None else bytearray()
    try:
        async for piece in body.stream():
            out += piece
    finally:
        body.close()
    return bytes(out)


async def _settled(ctx: EdgeContext) -> None:
    with trio.fail_after(10):
        while len(ctx.blobs.flights):
            await trio.sleep(0.01)


async def test_concurrent_misses_make_one_upstream_get_and_stream_early(tmp_path: Path) -> None:
    upstream = FakeUpstream()
    data = os.urandom(3 * MIB)
    digest = Digest.parse(upstream.add_blob(REPO, data))
    upstream.hold = True
    async with open_test_edge(tmp_path, upstream) as ctx:
        received = [bytearray() for _ in range(6)]

        async def client(i: int) -> None:
            await _read(await ctx.blobs.get(REPO, digest, None), received[i])

        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(client, i)
            with trio.fail_after(10):
                while min(len(r) for r in received) < len(data) // 2:
                    await trio.sleep(0.01)  # every client has the first half while the upstream still holds
            assert all(len(r) == len(data) // 2 for r in received)
            upstream.release.set()
        assert all(bytes(r) == data for r in received)
        assert upstream.count("GET", "/blobs/") == 1
        await _settled(ctx)
        assert (ctx.metrics.misses, ctx.metrics.coalesced, ctx.metrics.fills) == (1, 5, 1)
        await _read(await ctx.blobs.get(REPO, digest, None))
        assert ctx.metrics.hits == 1 and upstream.count("GET", "/blobs/") == 1


async def test_fill_completes_after_its_client_left(tmp_path: Path) -> None:
    upstream = FakeUpstream()
    data = os.urandom(2 * MIB)
    digest = Digest.parse(upstream.add_blob(REPO, data))
    upstream.hold = True
    async with open_test_edge(tmp_path, upstream) as ctx:
        body = await ctx.blobs.get(REPO, digest, None)
        stream = body.stream()
        first = await stream.__anext__()
        assert first
        await stream.aclose()
        body.close()  # the client is gone
        upstream.release.set()
        await _settled(ctx)
        assert await ctx.cache.contains(digest)
        assert await _read(await ctx.blobs.get(REPO, digest, None)) == data
        assert upstream.count("GET", "/blobs/") == 1


@pytest.mark.parametrize("size", [1000, 3 * MIB])
async def test_digest_mismatch_holds_back_the_end_and_caches_nothing(tmp_path: Path, size: int) -> None:
    upstream = FakeUpstream()
    data = os.urandom(size)
    digest = Digest.parse(upstream.add_blob(REPO, data))
    upstream.corrupt = True
    async with open_test_edge(tmp_path, upstream) as ctx:
        received = bytearray()
        body = await ctx.blobs.get(REPO, digest, None)
        assert body.size == size
        with pytest.raises(FillFailed):
            await _read(body, received)
        assert len(received) < size, "the last byte must never go out before verification"
        await _settled(ctx)
        assert not await ctx.cache.contains(digest)
        assert ctx.metrics.digest_mismatches == 1 and ctx.metrics.fills == 0
        assert list((tmp_path / "cache" / "tmp").iterdir()) == []
        upstream.corrupt = False
        assert await _read(await ctx.blobs.get(REPO, digest, None)) == data
        await _settled(ctx)
        assert await ctx.cache.contains(digest)


async def test_range_during_a_fill_waits_for_the_verified_blob(tmp_path: Path) -> None:
    upstream = FakeUpstream()
    data = os.urandom(2 * MIB)
    digest = Digest.parse(upstream.add_blob(REPO, data))
    upstream.hold = True
    async with open_test_edge(tmp_path, upstream) as ctx:
        leader = await ctx.blobs.get(REPO, digest, None)
        ranged: list[BlobBody] = []

        async def range_client() -> None:
            ranged.append(await ctx.blobs.get(REPO, digest, "bytes=100-199"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(range_client)
            await upstream.half_sent.wait()
            await trio.sleep(0.1)
            assert not ranged, "a range must not be answered before the blob is verified"
            upstream.release.set()
            nursery.start_soon(_read, leader)
        assert ranged[0].byte_range is not None and ranged[0].length == 100
        assert await _read(ranged[0]) == data[100:200]
        assert upstream.count("GET", "/blobs/") == 1


async def test_a_digest_known_from_one_repository_is_not_served_for_another(tmp_path: Path) -> None:
    upstream = FakeUpstream()
    data = os.urandom(100_000)
    digest = Digest.parse(upstream.add_blob("team/a", data))
    upstream.hold = True
    async with open_test_edge(tmp_path, upstream) as ctx:
        leader = await ctx.blobs.get("team/a", digest, None)
        with pytest.raises(e.RegistryError) as during_fill:
            await ctx.blobs.get("team/b", digest, None)
        assert during_fill.value.status == 404
        upstream.release.set()
        assert await _read(leader) == data
        await _settled(ctx)
        with pytest.raises(e.RegistryError) as cached:
            await ctx.blobs.get("team/b", digest, None)
        assert cached.value.status == 404
        with pytest.raises(e.RegistryError):
            await ctx.blobs.head("team/b", digest)
        upstream.add_blob("team/b", data)  # now the upstream links it in team/b too
        assert await _read(await ctx.blobs.get("team/b", digest, None)) == data
        assert upstream.count("GET", "/blobs/") == 1
        assert upstream.count("HEAD", "team/b/blobs/") == 4


async def test_upstream_errors_are_relayed_and_nothing_is_cached(tmp_path: Path) -> None:
    upstream = FakeUpstream()
    async with open_test_edge(tmp_path, upstream) as ctx:
        missing = Digest.parse("sha256:" + "1" * 64)
        with pytest.raises(e.RegistryError) as unknown:
            await ctx.blobs.get(REPO, missing, None)
        assert (unknown.value.status, unknown.value.code.code) == (404, "BLOB_UNKNOWN")
        upstream.status = 503
        with pytest.raises(e.RegistryError) as down:
            await ctx.blobs.get(REPO, missing, None)
        assert down.value.status == 503
        assert ctx.metrics.fills == 0 and len(ctx.blobs.flights) == 0
