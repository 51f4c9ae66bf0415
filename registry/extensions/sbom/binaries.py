"""Detectors for archives and executables: Maven coordinates in jars (nested too) and Go build info."""

from __future__ import annotations

import io
import zipfile
from typing import Any

Package = dict[str, Any]
JAR_SUFFIXES = (".jar", ".war", ".ear")
MAX_JAR_DEPTH = 4
GO_MAGIC = b"\xff Go buildinf:"
EXEC_MAGICS = (b"\x7fELF", b"MZ", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe")


def parse_jar(data: bytes, path: str, depth: int = 0) -> list[Package]:
    """``META-INF/maven/<group>/<artifact>/pom.properties`` entries, recursing into nested jars."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError):
        return []
    packages: list[Package] = []
    with archive:
        for info in archive.infolist():
            name = info.filename
            parts = name.split("/")
            if len(parts) == 5 and parts[:2] == ["META-INF", "maven"] and parts[4] == "pom.properties":
                props = _properties(archive.read(info))
                group = props.get("groupId", parts[2])
                artifact = props.get("artifactId", parts[3])
                if props.get("version"):
                    packages.append(
                        {
                            "type": "maven",
                            "namespace": group,
                            "name": artifact,
                            "version": props["version"],
                            "path": f"{path}!/{name}" if depth else path,
                        }
                    )
            elif name.endswith(JAR_SUFFIXES) and depth < MAX_JAR_DEPTH:
                packages += parse_jar(archive.read(info), f"{path}!/{name}", depth + 1)
    return packages


def _properties(data: bytes) -> dict[str, str]:
    out = {}
    for line in data.decode("latin-1").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def go_buildinfo(data: bytes) -> tuple[str, str] | None:
    """(Go version, module info) from a Go ≥ 1.18 binary's build info blob, or None.

    Layout (Go's debug/buildinfo): 14-byte magic, pointer size, flags; with flag 0x2 the version and the
    module info follow the 32-byte header as varint-length-prefixed strings. Older pointer-based layouts
    are not read.
    """
    at = data.find(GO_MAGIC)
    while at != -1 and at % 16:
        at = data.find(GO_MAGIC, at + 1)
    if at == -1 or len(data) < at + 32 or not data[at + 15] & 0x2:
        return None
    pos = at + 32
    try:
        n, pos = _uvarint(data, pos)
        version = data[pos : pos + n].decode("utf-8", "replace")
        pos += n
        n, pos = _uvarint(data, pos)
        raw = data[pos : pos + n]
    except IndexError:
        return None
    # The module info is wrapped in 16-byte sentinels.
    if len(raw) >= 33 and raw[-17:-16] == b"\n":
        raw = raw[16:-16]
    return version, raw.decode("utf-8", "replace")


def parse_go_binary(data: bytes, path: str) -> list[Package]:
    info = go_buildinfo(data)
    if info is None:
        return []
    version, modinfo = info
    packages: list[Package] = [{"type": "golang", "name": "stdlib", "version": version, "path": path}]
    for line in modinfo.splitlines():
        fields = line.split("\t")
        if fields[0] in ("mod", "dep") and len(fields) >= 3:
            packages.append({"type": "golang", "name": fields[1], "version": fields[2], "path": path})
        elif fields[0] == "=>" and len(fields) >= 3 and len(packages) > 1:
            packages[-1]["version"] = fields[2]  # a replaced module: the replacement's version
            packages[-1]["replaced_by"] = fields[1]
    return packages


def is_executable(head: bytes) -> bool:
    return head.startswith(EXEC_MAGICS)
