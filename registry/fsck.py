"""``registry fsck``: re-hash every blob and check every reference. Read-only; safe beside a server."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import trio

from registry.oci.digest import Digest, new_hasher
from registry.progress import NO_PROGRESS, ProgressSink
from registry.storage.fs_blobs import FilesystemBlobStore
from registry.storage.sqlite_meta import SqliteMetadataStore

HASH_CHUNK = 4 * 1024 * 1024


@dataclass
class FsckReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    blobs_checked: int = 0
    bytes_hashed: int = 0
    references_checked: int = 0

    @property
    def clean(self) -> bool:
        return not self.errors


def _rehash(path: Path, algorithm: str) -> tuple[str, int]:
    hasher = new_hasher(algorithm)
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


async def fsck(
    blobs: FilesystemBlobStore, meta: SqliteMetadataStore, progress: ProgressSink = NO_PROGRESS
) -> FsckReport:
    """Check that every recorded blob exists with the right size and digest, and that every manifest's
    references are present in its repository. Unreferenced content files are warnings (a crash between
    rename and metadata commit leaves them; garbage collection removes them). ``progress`` sees three phases:
    blobs re-hashed (with bytes), references checked, content files walked."""
    report = FsckReport()
    recorded = set()
    rows = await meta.all_blobs()
    progress.phase("re-hash blobs", len(rows))
    for row in rows:
        recorded.add(row.digest)
        path = blobs.blob_path(row.digest)
        try:
            encoded, size = await trio.to_thread.run_sync(_rehash, path, row.digest.algorithm)
        except FileNotFoundError:
            report.errors.append(f"blob {row.digest}: content file missing ({path})")
            progress.advance()
            continue
        report.blobs_checked += 1
        report.bytes_hashed += size
        progress.advance(nbytes=size)
        if size != row.size:
            report.errors.append(f"blob {row.digest}: size {size}, recorded {row.size}")
        elif encoded != row.digest.encoded:
            report.errors.append(f"blob {row.digest}: content is corrupt (hashes to {row.digest.algorithm}:{encoded})")
    linked_blobs, linked_manifests = await meta.memberships()
    refs = await meta.all_manifest_refs()
    progress.phase("check references", len(refs))
    for repo, manifest, ref, kind in refs:
        report.references_checked += 1
        progress.advance()
        if kind == "blob" and ((repo, ref) not in linked_blobs or ref not in recorded):
            report.errors.append(f"{repo}@{manifest}: references missing blob {ref}")
        elif kind == "child" and (repo, ref) not in linked_manifests:
            report.errors.append(f"{repo}@{manifest}: references missing manifest {ref}")
    progress.phase("walk content files")
    async for digest in blobs.walk():
        progress.advance()
        try:
            parsed = Digest.parse(str(digest))
        except Exception:
            report.warnings.append(f"unexpected file in blob store: {digest.algorithm}/{digest.encoded}")
            continue
        if parsed not in recorded:
            report.warnings.append(f"unreferenced content {parsed} (removed by garbage collection)")
    progress.done()
    return report


def format_report(report: FsckReport) -> str:
    lines = [f"ERROR   {m}" for m in report.errors] + [f"WARNING {m}" for m in report.warnings]
    lines.append(
        f"checked {report.blobs_checked} blobs ({report.bytes_hashed} bytes re-hashed) and "
        f"{report.references_checked} references: " + ("clean" if report.clean else f"{len(report.errors)} error(s)")
    )
    return os.linesep.join(lines)
