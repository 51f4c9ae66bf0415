"""The primary's pull policy through the edge, in process with a fake upstream and a fake clock: manifests of a
repository the upstream marks with ``X-Registry-Pull-Policy`` are confirmed after ``policy_ttl`` (by tag and by
digest), a refusal is relayed as the upstream's 403 ``DENIED``, and they are not served stale.
The same against a real primary and edge process: tests/edge/test_pull_policy_e2e.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry.oci import errors as e
from tests.edge.fakeupstream import FakeClock, FakeUpstream, open_test_edge

REPO = "team/app"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
POLICY = "scan; namespace=team"
TTLS = {"tag_ttl": 60, "digest_ttl": 300, "policy_ttl": 5, "max_stale": 600}


def manifest(n: int) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "n": n}).encode()


async def test_governed_manifest_is_refused_after_policy_ttl_and_allowed_again(tmp_path: Path) -> None:
    upstream, clock = FakeUpstream(), FakeClock()
    upstream.pull_policies[REPO] = POLICY
    digest = upstream.add_manifest(REPO, "v1", manifest(1), OCI_MANIFEST)
    async with open_test_edge(tmp_path, upstream, clock, **TTLS) as ctx:
        assert (await ctx.manifests.get(REPO, "v1")).manifest.content == manifest(1)
        assert (await ctx.manifests.get(REPO, digest)).manifest.content == manifest(1)
        upstream.denied.add(digest)  # the primary's scan finished and its policy now refuses the image

        clock.now += 4  # within policy_ttl: served from the cache without asking (the documented window)
        calls = len(upstream.calls)
        assert not (await ctx.manifests.get(REPO, digest)).stale
        assert len(upstream.calls) == calls

        clock.now += 2
        for reference in (digest, "v1"):
            for _ in range(2):  # refused every time, never served from the cache meanwhile
                with pytest.raises(e.RegistryError) as refused:
                    await ctx.manifests.get(REPO, reference)
                assert (refused.value.status, refused.value.code.code) == (403, "DENIED")
                assert POLICY in str(refused.value.message)
        # HEAD first (cheap), then a GET for the error envelope (a HEAD answer has no body).
        assert upstream.calls[calls : calls + 2] == [
            ("HEAD", f"/v2/{REPO}/manifests/{digest}"),
            ("GET", f"/v2/{REPO}/manifests/{digest}"),
        ]

        upstream.denied.clear()  # allowlisted on the primary
        assert (await ctx.manifests.get(REPO, digest)).manifest.content == manifest(1)
        assert (await ctx.manifests.get(REPO, "v1")).manifest.content == manifest(1)


async def test_policy_switched_on_later_is_learned_within_digest_ttl(tmp_path: Path) -> None:
    upstream, clock = FakeUpstream(), FakeClock()
    digest = upstream.add_manifest(REPO, "v1", manifest(1), OCI_MANIFEST)
    async with open_test_edge(tmp_path, upstream, clock, **TTLS) as ctx:
        await ctx.manifests.get(REPO, "v1")
        await ctx.manifests.get(REPO, digest)
        upstream.pull_policies[REPO] = POLICY
        upstream.denied.add(digest)
        clock.now += 59  # no policy known to the edge: tag_ttl and digest_ttl apply
        assert (await ctx.manifests.get(REPO, "v1")).manifest.content == manifest(1)
        clock.now += 2
        with pytest.raises(e.RegistryError) as by_tag:
            await ctx.manifests.get(REPO, "v1")
        assert by_tag.value.status == 403
        # The tag's answer named the policy: the digest is now governed by policy_ttl (it was confirmed 61 s ago).
        with pytest.raises(e.RegistryError) as by_digest:
            await ctx.manifests.get(REPO, digest)
        assert by_digest.value.code.code == "DENIED"


async def test_digest_outside_a_policy_is_confirmed_after_digest_ttl(tmp_path: Path) -> None:
    upstream, clock = FakeUpstream(), FakeClock()
    digest = upstream.add_manifest("other/app", "v1", manifest(2), OCI_MANIFEST)
    async with open_test_edge(tmp_path, upstream, clock, **TTLS) as ctx:
        await ctx.manifests.get("other/app", digest)
        upstream.pull_policies["other/app"] = POLICY
        upstream.denied.add(digest)
        clock.now += 299
        assert (await ctx.manifests.get("other/app", digest)).manifest.content == manifest(2)
        assert upstream.count("HEAD") == 0
        clock.now += 2
        with pytest.raises(e.RegistryError) as refused:
            await ctx.manifests.get("other/app", digest)
        assert refused.value.status == 403 and upstream.count("HEAD") == 1


async def test_governed_manifests_are_not_served_stale_by_default(tmp_path: Path) -> None:
    upstream, clock = FakeUpstream(), FakeClock()
    upstream.pull_policies[REPO] = POLICY
    governed = upstream.add_manifest(REPO, "v1", manifest(1), OCI_MANIFEST)
    free = upstream.add_manifest("free/app", "v1", manifest(2), OCI_MANIFEST)
    async with open_test_edge(tmp_path, upstream, clock, **TTLS) as ctx:
        for repo, ref in ((REPO, "v1"), (REPO, governed), ("free/app", "v1"), ("free/app", free)):
            await ctx.manifests.get(repo, ref)
        upstream.status = 503
        clock.now += 301
        for ref in ("v1", governed):
            with pytest.raises(e.RegistryError) as down:
                await ctx.manifests.get(REPO, ref)
            assert down.value.status == 503
        for ref in ("v1", free):  # outside a policy: max_stale (tags) / always (digests), marked stale
            assert (await ctx.manifests.get("free/app", ref)).stale


async def test_policy_max_stale_and_a_removed_policy(tmp_path: Path) -> None:
    upstream, clock = FakeUpstream(), FakeClock()
    upstream.pull_policies[REPO] = POLICY
    digest = upstream.add_manifest(REPO, "v1", manifest(1), OCI_MANIFEST)
    async with open_test_edge(tmp_path, upstream, clock, **TTLS, policy_max_stale=10) as ctx:
        await ctx.manifests.get(REPO, digest)
        upstream.status = 503
        clock.now += 14  # policy_ttl 5 + policy_max_stale 10 ≥ 14: stale
        assert (await ctx.manifests.get(REPO, digest)).stale
        clock.now += 2
        with pytest.raises(e.RegistryError):
            await ctx.manifests.get(REPO, digest)
        upstream.status = 0
        del upstream.pull_policies[REPO]  # the policy was cleared on the primary
        assert not (await ctx.manifests.get(REPO, digest)).stale
        heads = upstream.count("HEAD")
        clock.now += 200  # back to digest_ttl: no revalidation
        await ctx.manifests.get(REPO, digest)
        assert upstream.count("HEAD") == heads


async def test_a_refusal_without_the_header_does_not_lift_the_policy(tmp_path: Path) -> None:
    """A 403 without X-Registry-Pull-Policy (an authorization refusal for one client) keeps the repository under
    its policy; only a 200 without the header takes it out."""
    upstream, clock = FakeUpstream(), FakeClock()
    upstream.pull_policies[REPO] = POLICY
    digest = upstream.add_manifest(REPO, "v1", manifest(1), OCI_MANIFEST)
    async with open_test_edge(tmp_path, upstream, clock, **TTLS) as ctx:
        await ctx.manifests.get(REPO, digest)
        del upstream.pull_policies[REPO]
        upstream.denied.add(digest)
        clock.now += 6
        with pytest.raises(e.RegistryError):
            await ctx.manifests.get(REPO, digest)
        assert await ctx.manifests.index.pull_policy(REPO) == POLICY
        upstream.denied.clear()
        await ctx.manifests.get(REPO, digest)
        assert await ctx.manifests.index.pull_policy(REPO) is None
