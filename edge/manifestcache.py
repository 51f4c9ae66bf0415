"""Manifests through the edge: bytes checked against their digest, tags and digests revalidated after their TTL,
stale when the upstream is down, and the primary's pull policy honoured.

By digest: the bytes are cached exactly as served with their media type, after checking they hash to the
digest; served for a repository once the upstream served them through it (the same scoping rule as blobs), and
confirmed again with a ``HEAD`` by digest after ``digest_ttl``. By tag: fresh for ``tag_ttl``; then a ``HEAD``
revalidates it (same digest: refresh; new digest: fetch). A 404 from the upstream forgets the tag.

Pull policies (``edge.freshness``): an upstream manifest answer that names a pull policy
(``X-Registry-Pull-Policy``, the primary's scan policy) puts the repository under ``policy_ttl`` and
``policy_max_stale``; one without the header takes it out. A revalidation the upstream refuses (403 ``DENIED``)
is followed by a ``GET`` so the client gets the primary's error envelope, and nothing is served from the cache
until the upstream allows the manifest again. When the upstream is unavailable: tags are served within
``max_stale`` and governed manifests within ``policy_max_stale``, marked stale; other manifests by digest are
served, marked stale. After each fetch edge.db is pruned to ``IndexLimits``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from edge.freshness import Freshness, FreshnessPolicy, OnFailure, decide, on_upstream_failure
from edge.index import IndexLimits, SqliteEdgeIndex, StoredManifest, TagEntry
from edge.metrics import EdgeMetrics
from edge.upstream import MANIFEST_ACCEPT, Reply, Upstream, UpstreamUnavailable, relayed_error
from registry.oci import errors as e
from registry.oci import mediatypes as mt
from registry.oci.digest import Digest
from registry.oci.names import parse_reference
from registry.oci.wire import PULL_POLICY_HEADER

DEFAULT_LIMITS = IndexLimits()
MISMATCH = e.ErrorCode("UNAVAILABLE", "the upstream served a manifest that does not match its digest", 503)


@dataclass(frozen=True)
class ManifestAnswer:
    manifest: StoredManifest
    stale: bool = False


def _media_type(content_type: str | None, content: bytes) -> str:
    if content_type:
        return content_type.split(";", 1)[0].strip()
    try:
        declared = json.loads(content).get("mediaType")
    except (ValueError, AttributeError):
        declared = None
    return declared if isinstance(declared, str) and declared else mt.OCI_MANIFEST


class ManifestCache:
    """Manifest GET/HEAD for the edge."""

    def __init__(
        self,
        *,
        index: SqliteEdgeIndex,
        upstream: Upstream,
        metrics: EdgeMetrics,
        policy: FreshnessPolicy,
        clock: Callable[[], float],
        max_bytes: int,
        limits: IndexLimits = DEFAULT_LIMITS,
    ) -> None:
        self.index, self.upstream, self.metrics = index, upstream, metrics
        self.policy = policy
        self.clock = clock
        self.max_bytes = max_bytes
        self.limits = limits

    async def get(self, repo: str, reference: str) -> ManifestAnswer:
        """The manifest ``reference`` (tag or digest) of ``repo``.

        Raises:
            RegistryError: ``DIGEST_INVALID``/``TAG_INVALID``; the upstream's 404 or 403 ``DENIED`` (relayed);
                503 when the upstream is unavailable and nothing servable is cached.
        """
        ref = parse_reference(reference)
        if isinstance(ref, Digest):
            return await self._by_digest(repo, ref)
        return await self._by_tag(repo, ref)

    async def _policy_for(self, repo: str) -> FreshnessPolicy:
        governed = await self.index.pull_policy(repo) is not None
        return self.policy.under_pull_policy() if governed else self.policy

    async def _note_policy(self, repo: str, reply: Reply) -> None:
        """Remember whether the upstream's manifest answer for ``repo`` named a pull policy. A 200 without the
        header clears it; a 403 only sets it (a 403 without it is an authorization refusal, which must not let
        one client take the repository out of the policy's short TTL)."""
        policy = reply.headers.get(PULL_POLICY_HEADER)
        if reply.status == 200 or (reply.status == 403 and policy is not None):
            await self.index.set_pull_policy(repo, policy, self.clock())

    async def _head(self, repo: str, reference: str) -> Reply:
        """``HEAD`` the manifest upstream; a 200 or 403 answer updates the repository's pull policy."""
        self.metrics.revalidations += 1
        reply = await self.upstream.request(
            "HEAD", f"/v2/{repo}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )
        await self._note_policy(repo, reply)
        return reply

    async def _by_digest(self, repo: str, digest: Digest) -> ManifestAnswer:
        confirmed = await self.index.confirmed_at(repo, digest)
        cached = await self.index.get_manifest(digest) if confirmed is not None else None
        if confirmed is None or cached is None:
            return ManifestAnswer(await self._fetch(repo, str(digest), digest))
        now = self.clock()
        policy = await self._policy_for(repo)
        if decide(confirmed, now, policy, by_digest=True) is Freshness.FRESH:
            self.metrics.manifest_hits += 1
            return ManifestAnswer(cached)
        try:
            reply = await self._head(repo, str(digest))
        except UpstreamUnavailable:
            if on_upstream_failure(confirmed, now, policy, by_digest=True) is OnFailure.FAIL:
                raise
            self.metrics.stale_serves += 1
            return ManifestAnswer(cached, stale=True)
        if reply.status != 200:
            # 403 DENIED (or any other refusal): GET relays the upstream's error envelope (HEAD has no body).
            return ManifestAnswer(await self._fetch(repo, str(digest), digest))
        await self.index.link(repo, digest, self.clock())
        self.metrics.manifest_hits += 1
        return ManifestAnswer(cached)

    async def _by_tag(self, repo: str, tag: str) -> ManifestAnswer:
        now = self.clock()
        entry = await self.index.get_tag(repo, tag)
        cached = await self.index.get_manifest(entry.digest) if entry is not None else None
        policy = await self._policy_for(repo)
        if entry is not None and cached is not None and decide(entry.checked_at, now, policy) is Freshness.FRESH:
            self.metrics.manifest_hits += 1
            return ManifestAnswer(cached)
        try:
            return ManifestAnswer(await self._revalidate(repo, tag, entry, cached))
        except UpstreamUnavailable:
            if entry is None or cached is None:
                raise
            if on_upstream_failure(entry.checked_at, now, policy) is OnFailure.FAIL:
                raise
            self.metrics.stale_serves += 1
            return ManifestAnswer(cached, stale=True)

    async def _revalidate(
        self, repo: str, tag: str, entry: TagEntry | None, cached: StoredManifest | None
    ) -> StoredManifest:
        if entry is not None and cached is not None:
            reply = await self._head(repo, tag)
            if reply.status == 404:
                await self.index.drop_tag(repo, tag)
                raise relayed_error(reply.status, reply.content, e.MANIFEST_UNKNOWN)
            if reply.status == 200 and reply.headers.get("docker-content-digest") == str(entry.digest):
                now = self.clock()
                await self.index.set_tag(repo, tag, TagEntry(entry.digest, cached.media_type, now))
                await self.index.link(repo, entry.digest, now)  # the tag's HEAD passed the same pull policy
                self.metrics.manifest_hits += 1
                return cached
            # A new digest, or a refusal (403 DENIED): GET fetches it or relays the upstream's error envelope.
        manifest = await self._fetch(repo, tag, None)
        await self.index.set_tag(repo, tag, TagEntry(manifest.digest, manifest.media_type, self.clock()))
        return manifest

    async def _fetch(self, repo: str, reference: str, expected: Digest | None) -> StoredManifest:
        """GET the manifest from the upstream, check its digest, store it and link it to ``repo``."""
        self.metrics.manifest_misses += 1
        reply = await self.upstream.request(
            "GET", f"/v2/{repo}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}, max_bytes=self.max_bytes
        )
        await self._note_policy(repo, reply)
        if reply.status != 200:
            raise relayed_error(reply.status, reply.content, e.MANIFEST_UNKNOWN)
        claimed = expected
        if claimed is None:
            header = reply.headers.get("docker-content-digest")
            claimed = Digest.parse(header) if header else None
        actual = Digest.of(reply.content, claimed.algorithm if claimed is not None else "sha256")
        if claimed is not None and actual != claimed:
            self.metrics.digest_mismatches += 1
            raise e.RegistryError(MISMATCH, detail={"expected": str(claimed), "actual": str(actual)})
        manifest = StoredManifest(actual, _media_type(reply.headers.get("content-type"), reply.content), reply.content)
        now = self.clock()
        await self.index.put_manifest(manifest, now)
        await self.index.link(repo, actual, now)
        await self.index.prune(self.limits)
        return manifest
