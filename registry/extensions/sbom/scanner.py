"""Scan a merged view: which files to keep while building it, and the packages found in it."""

from __future__ import annotations

import posixpath
from typing import Any

from registry.extensions.sbom import binaries, detectors
from registry.extensions.sbom.fsview import MergedView, open_layer

MAX_TEXT_BYTES = 64 * 1024 * 1024
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")


def keep(path: str, mode: int, size: int) -> str | None:
    """What the view keeps of a regular file (see :data:`registry.extensions.sbom.fsview.Keep`)."""
    base = posixpath.basename(path)
    if (
        path in OS_RELEASE
        or path == detectors.DPKG_STATUS
        or path.startswith(detectors.DPKG_STATUS_D + "/")
        or path.endswith(detectors.APK_INSTALLED)
        or base in ("rpmdb.sqlite", "Packages", "Packages.db")
        or detectors.PY_METADATA.search(path)
        or detectors.NPM_PACKAGE.search(path)
    ):
        return "content" if size <= MAX_TEXT_BYTES else None
    if base.endswith(binaries.JAR_SUFFIXES):
        return "digest"
    if mode & 0o111 and size > 1024:
        return "digest"
    return None


def digest(path: str, data: bytes) -> list[dict[str, Any]]:
    """Findings of a jar or an executable, taken while the layer streams by."""
    if path.endswith(binaries.JAR_SUFFIXES):
        return binaries.parse_jar(data, path)
    if binaries.is_executable(data[:4]):
        return binaries.parse_go_binary(data, path)
    return []


def _real(view: MergedView, path: str) -> str | None:
    real = view.resolve(path)
    entry = None if real is None else view.entries.get(real)
    return real if entry is not None and entry.kind == "file" else None


def detect(view: MergedView) -> dict[str, Any]:
    """Packages, OS release and notes (unsupported databases, skipped files) of a built view."""
    packages: list[dict[str, Any]] = []
    notes = list(view.notes)
    os_release: dict[str, str] = {}
    for candidate in OS_RELEASE:
        data = view.read(candidate)
        if data is not None:
            os_release = detectors.parse_os_release(data)
            break
    seen: set[str] = set()

    def once(path: str | None) -> bytes | None:
        if path is None or path in seen:
            return None
        seen.add(path)
        return view.read(path)

    data = once(_real(view, detectors.DPKG_STATUS))
    if data is not None:
        packages += detectors.parse_dpkg(data, detectors.DPKG_STATUS)
    for name in view.listdir(detectors.DPKG_STATUS_D):
        if not name.endswith((".md5sums",)):
            data = once(_real(view, name))
            if data is not None:
                packages += detectors.parse_dpkg(data, name)
    data = once(_real(view, detectors.APK_INSTALLED))
    if data is not None:
        packages += detectors.parse_apk(data, detectors.APK_INSTALLED)
    for path in detectors.RPM_SQLITE:
        data = once(_real(view, path))
        if data is not None:
            packages += detectors.parse_rpm_sqlite(data, path)
    for path in detectors.RPM_BDB:
        if _real(view, path) is not None:
            notes.append(f"{path}: rpm BerkeleyDB database is not supported; its packages are not listed")
    for path in detectors.RPM_NDB:
        if _real(view, path) is not None:
            notes.append(f"{path}: rpm ndb database is not supported; its packages are not listed")
    for path, entry in sorted(view.files()):
        if entry.content is not None and detectors.PY_METADATA.search(path):
            packages += detectors.parse_python(entry.content, path)
        elif entry.content is not None and detectors.NPM_PACKAGE.search(path):
            packages += detectors.parse_npm(entry.content, path)
        packages += entry.findings
    return {"os": os_release, "packages": packages, "notes": notes}


def scan_layers(paths: list[str]) -> dict[str, Any]:
    """Build the merged view of the layer files at ``paths`` (lowest first) and detect its packages."""
    view = MergedView(keep, digest)
    for path in paths:
        with open_layer(path) as stream:
            view.add_layer(stream)
    return detect(view)
