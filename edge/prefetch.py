"""Prefetch: warm the cache with a whole image — the manifest, for an index every child manifest, and every config
and layer blob — through the same paths a pull takes (``ManifestCache.get`` and ``EdgeBlobs.get``: single-flight
fills, digest verification, repository scoping), so a prefetch racing client pulls fetches nothing twice.

A blob already cached for the repository is not read again. Blobs are fetched ``concurrency`` at a time. The
caller decides who may prefetch (``edge.api.prefetch``): a prefetch is a pull of the whole image and runs with the
caller's upstream authorization (``edge.upstream.CLIENT_AUTHORIZATION``). Fills started here run in the edge's
nursery, so they complete even if the prefetch is cancelled.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from edge.blobs import EdgeBlobs
from edge.manifestcache import ManifestCache
from registry.oci.digest import Digest
from registry.oci.manifest import parse_manifest

Progress = Callable[[dict[str, Any]], Awaitable[None]]
DEFAULT_CONCURRENCY = 4
MAX_CHILDREN = 64  # index children fetched per prefetch at most


@dataclass
class PrefetchReport:
    repository: str
    reference: str
    digest: str = ""
    manifests: int = 0
    blobs: int = 0
    blobs_cached: int = 0  # already in the cache for the repository: not fetched
    bytes_fetched: int = 0
    platforms: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return dict(vars(self))


async def _ignore(_: dict[str, Any]) -> None:
    return None


class Prefetcher:
    def __init__(self, manifests: ManifestCache, blobs: EdgeBlobs, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.manifests = manifests
        self.blobs = blobs
        self.limiter = trio.CapacityLimiter(concurrency)

    async def prefetch(self, repo: str, reference: str, progress: Progress = _ignore) -> PrefetchReport:
        """Cache ``repo:reference`` (tag or digest) completely; ``progress`` gets one JSON-able dict per item.

        Raises:
            RegistryError: the upstream's answer (404, 401/403 in passthrough), 503 when it is unavailable or
                served content that does not match its digest.
        """
        report = PrefetchReport(repo, reference)
        answer = await self.manifests.get(repo, reference)
        report.digest = str(answer.manifest.digest)
        await self._image(repo, answer.manifest.content, answer.manifest.media_type, report, progress)
        await progress({"type": "manifest", "digest": report.digest, "mediaType": answer.manifest.media_type})
        return report

    async def _image(
        self, repo: str, content: bytes, media_type: str, report: PrefetchReport, progress: Progress
    ) -> None:
        report.manifests += 1
        parsed = parse_manifest(content, media_type)
        names = _platforms(content) if parsed.children else {}
        for child in parsed.children[:MAX_CHILDREN]:
            answer = await self.manifests.get(repo, str(child.digest))
            name = names.get(str(child.digest), "unknown")
            report.platforms.append(name)
            await self._image(repo, answer.manifest.content, answer.manifest.media_type, report, progress)
            await progress({"type": "manifest", "digest": str(child.digest), "platform": name})
        async with trio.open_nursery() as nursery:
            for blob in parsed.blobs:
                if not blob.urls:  # non-distributable layers live elsewhere
                    nursery.start_soon(self._blob, repo, blob.digest, blob.size, report, progress)

    async def _blob(self, repo: str, digest: Digest, size: int, report: PrefetchReport, progress: Progress) -> None:
        async with self.limiter:
            report.blobs += 1
            if await self.blobs.index.is_linked(repo, digest) and await self.blobs.cache.contains(digest):
                report.blobs_cached += 1
                await progress({"type": "blob", "digest": str(digest), "size": size, "cached": True})
                return
            body = await self.blobs.get(repo, digest, None)
            fetched = 0
            try:
                stream = body.stream()
                try:
                    async for piece in stream:
                        fetched += len(piece)
                finally:
                    await stream.aclose()
            finally:
                body.close()
            report.bytes_fetched += fetched
            await progress({"type": "blob", "digest": str(digest), "size": fetched, "cached": False})


def _platforms(index: bytes) -> dict[str, str]:
    """Child digest → ``os/arch[/variant]`` from an index's ``platform`` fields (already validated JSON)."""
    names: dict[str, str] = {}
    for child in json.loads(index).get("manifests", []):
        platform = child.get("platform") if isinstance(child, dict) else None
        if isinstance(platform, dict):
            parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
            names[str(child.get("digest"))] = "/".join(str(p) for p in parts if p)
    return names
