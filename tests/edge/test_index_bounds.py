"""edge.db stays bounded: the oldest links, manifests and tags beyond ``IndexLimits`` are dropped."""

from __future__ import annotations

from pathlib import Path

from edge.index import IndexLimits, StoredManifest, TagEntry, open_edge_index
from registry.oci.digest import Digest


async def test_prune_drops_oldest_rows(tmp_path: Path) -> None:
    index = await open_edge_index(tmp_path / "edge.db")
    try:
        digests = [Digest.of(f"m{i}".encode()) for i in range(10)]
        for i, digest in enumerate(digests):
            await index.put_manifest(StoredManifest(digest, "application/json", f"m{i}".encode()), float(i))
            await index.link("ns/app", digest, float(i))
            await index.set_tag("ns/app", f"t{i}", TagEntry(digest, "application/json", float(i)))
        dropped = await index.prune(IndexLimits(links=4, manifests=3, tags=2))
        assert dropped == 6 + 7 + 8
        assert [await index.get_manifest(d) is not None for d in digests] == [False] * 7 + [True] * 3
        assert [await index.is_linked("ns/app", d) for d in digests] == [False] * 6 + [True] * 4
        assert [await index.get_tag("ns/app", f"t{i}") is not None for i in range(10)] == [False] * 8 + [True] * 2
        assert await index.prune(IndexLimits(links=4, manifests=3, tags=2)) == 0
    finally:
        index.close()
