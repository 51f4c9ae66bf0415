"""The merged filesystem of an image's layers, built in memory from the layer tars without extracting them.

OCI image-spec layer rules, applied per layer in order: the layer's whiteouts act on the lower layers only
(opaque markers ``.wh..wh..opq`` first, then ``.wh.<name>``), then its entries are added; an entry that
replaces a directory with a non-directory removes the directory's subtree. Only metadata is kept for most
files; the content of files a ``keep`` predicate selects is read (up to ``max_file_bytes``) or handed to a
``digest`` callback that turns it into findings right away (jars, executables), so memory stays small.
"""

from __future__ import annotations

import gzip
import posixpath
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_SYMLINK_HOPS = 40


@dataclass
class Entry:
    kind: str  # "file" | "dir" | "symlink"
    mode: int = 0o644
    size: int = 0
    target: str = ""  # symlink target
    content: bytes | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)


def normalize(name: str) -> str:
    """A tar member name as a clean relative path ('' is the root)."""
    path = posixpath.normpath("/" + name).lstrip("/")
    return "" if path == "." else path


def open_layer(path: str) -> IO[bytes]:
    """Open a layer blob; gzip is detected from its magic bytes (zstd is not supported)."""
    raw = open(path, "rb")  # noqa: SIM115 - returned to the caller
    magic = raw.read(4)
    raw.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if magic == b"\x28\xb5\x2f\xfd":
        raw.close()
        raise ValueError("zstd-compressed layers are not supported")
    return raw


Keep = Callable[[str, int, int], str | None]
"""(path, mode, size) → None (metadata only), "content" (keep the bytes) or "digest" (hand to the callback)."""
Digester = Callable[[str, bytes], list[dict[str, Any]]]


class MergedView:
    def __init__(self, keep: Keep, digest: Digester, max_file_bytes: int = 256 * 1024 * 1024) -> None:
        self.entries: dict[str, Entry] = {"": Entry("dir", 0o755)}
        self.keep = keep
        self.digest = digest
        self.max_file_bytes = max_file_bytes
        self.notes: list[str] = []

    # -- building -------------------------------------------------------------------------------------
    def _remove_subtree(self, path: str, keep_self: bool = False) -> None:
        prefix = path + "/" if path else ""
        for name in [n for n in self.entries if n.startswith(prefix) and n != ""]:
            del self.entries[name]
        if not keep_self:
            self.entries.pop(path, None)

    def _content(self, tar: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> Entry:
        entry = Entry("file", member.mode, member.size)
        action = self.keep(path, member.mode, member.size)
        if action is None:
            return entry
        if member.size > self.max_file_bytes:
            self.notes.append(f"{path}: {member.size} bytes, larger than the limit; skipped")
            return entry
        stream = tar.extractfile(member)
        if stream is None:
            return entry
        data = stream.read()
        if action == "content":
            entry.content = data
        else:
            entry.findings = self.digest(path, data)
        return entry

    def add_layer(self, stream: IO[bytes]) -> None:
        """Apply one layer (an uncompressed tar stream) on top of the view."""
        layer: dict[str, Entry] = {}
        opaque: list[str] = []
        whiteouts: list[str] = []
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                path = normalize(member.name)
                parent, base = posixpath.split(path)
                if base == OPAQUE:
                    opaque.append(parent)
                    continue
                if base.startswith(WHITEOUT):
                    whiteouts.append(posixpath.join(parent, base[len(WHITEOUT) :]))
                    continue
                if member.isdir():
                    layer[path] = Entry("dir", member.mode)
                elif member.issym():
                    layer[path] = Entry("symlink", member.mode, target=member.linkname)
                elif member.islnk():
                    source = layer.get(normalize(member.linkname)) or self.entries.get(normalize(member.linkname))
                    layer[path] = Entry("file", member.mode) if source is None else _copy(source)
                elif member.isreg():
                    layer[path] = self._content(tar, member, path)
                # devices, fifos: not relevant for package detection
        for directory in opaque:
            self._remove_subtree(directory, keep_self=True)
        for path in whiteouts:
            self._remove_subtree(path)
        for path in sorted(layer):
            entry = layer[path]
            old = self.entries.get(path)
            if old is not None and old.kind == "dir" and entry.kind != "dir":
                self._remove_subtree(path)
            self._ensure_parents(path)
            self.entries[path] = entry

    def _ensure_parents(self, path: str) -> None:
        parent = posixpath.dirname(path)
        while parent:
            old = self.entries.get(parent)
            if old is not None and old.kind == "dir":
                return
            if old is not None and old.kind != "dir":
                self._remove_subtree(parent)
            self.entries[parent] = Entry("dir", 0o755)
            parent = posixpath.dirname(parent)

    # -- reading --------------------------------------------------------------------------------------
    def resolve(self, path: str) -> str | None:
        """Resolve ``path`` inside the view, following symlinks in every component (absolute targets are
        relative to the image root, ``..`` never leaves it). Returns the final path or None."""
        parts = [p for p in normalize(path).split("/") if p]
        resolved = ""
        hops = 0
        while parts:
            part = parts.pop(0)
            candidate = posixpath.join(resolved, part) if resolved else part
            entry = self.entries.get(candidate)
            if entry is None:
                return None
            if entry.kind == "symlink":
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None
                target = entry.target
                base = "" if target.startswith("/") else resolved
                joined = normalize(posixpath.join("/" + base, target))
                parts = [p for p in joined.split("/") if p] + parts
                resolved = ""
                continue
            resolved = candidate
        return resolved

    def read(self, path: str) -> bytes | None:
        real = self.resolve(path)
        entry = None if real is None else self.entries.get(real)
        return None if entry is None or entry.kind != "file" else entry.content

    def files(self) -> Iterator[tuple[str, Entry]]:
        for path, entry in self.entries.items():
            if entry.kind == "file":
                yield path, entry

    def listdir(self, path: str) -> list[str]:
        real = self.resolve(path)
        if real is None or self.entries.get(real, Entry("file")).kind != "dir":
            return []
        prefix = real + "/" if real else ""
        return sorted(n for n in self.entries if n.startswith(prefix) and "/" not in n[len(prefix) :] and n)


def _copy(entry: Entry) -> Entry:
    return Entry(entry.kind, entry.mode, entry.size, entry.target, entry.content, list(entry.findings))
