"""Manifest caching in process with a fake clock: immutable by digest, tag TTL and revalidation, stale serving.
Auth mode: none (a fake open upstream; the authorizer is not wired)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from registry.oci import errors as e
from tests.edge.fakeupstream import FakeClock, FakeUpstream, open_test_edge

REPO = "team/app"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def manifest(n: int) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "n": n}, indent=3).encode()


async def test_tag_ttl_revalidation_and_stale_serving(tmp_path: Path) -> None:
    upstream, clock = FakeUpstream(), FakeClock()
    first = upstream.add_manifest(REPO, "v1", manifest(1), OCI_MANIFEST)
    async with open_test_edge(tmp_path, upstream, clock, tag_ttl=60, max_stale=600) as ctx:
        answer = await ctx.manifests.get(REPO, "v1")
        assert (answer.manifest.content, answer.manifest.media_type, answer.stale) == (manifest(1), OCI_MANIFEST, False)
        assert str(answer.manifest.digest) == first

        clock.now += 30  # fresh: the upstream is not asked
        calls = len(upstream.calls)
        assert (await ctx.manifests.get(REPO, "v1")).manifest.content == manifest(1)
        assert len(upstream.calls) == calls

        clock.now += 31  # expired, unchanged upstream: one HEAD, no GET
        assert (await ctx.manifests.get(REPO, "v1")).manifest.content == manifest(1)
        assert upstream.calls[calls:] == [("HEAD", f"/v2/{REPO}/manifests/v1")]

        upstream.add_manifest(REPO, "v1", manifest(2), OCI_MANIFEST)  # the tag moved
        clock.now += 61
        assert (await ctx.manifests.get(REPO, "v1")).manifest.content == manifest(2)

        for status in (503, 429, 500):
            upstream.status = status
            clock.now += 61
            stale = await ctx.manifests.get(REPO, "v1")
            assert stale.stale and stale.manifest.content == manifest(2)
        upstream.status = 0
        for error in (httpx.ReadTimeout("hung"), httpx.ConnectError("refused")):
            upstream.error = error
            clock.now += 61
            assert (await ctx.manifests.get(REPO, "v1")).stale
        assert ctx.metrics.stale_serves == 5

        clock.now += 500  # past tag_ttl + max_stale since the last confirmation
        with pytest.raises(e.RegistryError) as too_old:
            await ctx.manifests.get(REPO, "v1")
        assert too_old.value.status == 503

        # By digest, past digest_ttl and outside a pull policy: served while the upstream is down, marked stale
        # (the bytes are immutable; only the upstream's confirmation is missing).
        by_digest = await ctx.manifests.get(REPO, first)
        assert by_digest.manifest.content == manifest(1) and by_digest.stale


async def test_deleted_tag_is_forgotten_not_served_stale(tmp_path: Path) -> None:
    upstream, clock = FakeUpstream(), FakeClock()
    upstream.add_manifest(REPO, "v1", manifest(1), OCI_MANIFEST)
    async with open_test_edge(tmp_path, upstream, clock, tag_ttl=10) as ctx:
        await ctx.manifests.get(REPO, "v1")
        del upstream.manifests[(REPO, "v1")]
        clock.now += 11
        with pytest.raises(e.RegistryError) as gone:
            await ctx.manifests.get(REPO, "v1")
        assert gone.value.status == 404
        upstream.status = 503
        with pytest.raises(e.RegistryError) as down:
            await ctx.manifests.get(REPO, "v1")
        assert down.value.status == 503


async def test_manifest_by_digest_is_checked_and_scoped(tmp_path: Path) -> None:
    upstream = FakeUpstream()
    digest = upstream.add_manifest("team/a", "v1", manifest(1), OCI_MANIFEST)
    async with open_test_edge(tmp_path, upstream) as ctx:
        assert (await ctx.manifests.get("team/a", digest)).manifest.content == manifest(1)
        with pytest.raises(e.RegistryError) as other:
            await ctx.manifests.get("team/b", digest)
        assert other.value.status == 404
        # An upstream that answers a digest with other bytes is refused, not cached.
        wrong = "sha256:" + "2" * 64
        upstream.manifests[("team/a", wrong)] = (OCI_MANIFEST, manifest(3))
        with pytest.raises(e.RegistryError) as mismatch:
            await ctx.manifests.get("team/a", wrong)
        assert mismatch.value.status == 503 and ctx.metrics.digest_mismatches == 1
