"""Package detectors: each reads one kind of package database or metadata file and returns packages.

A package is a plain dict (it crosses the worker process boundary as JSON): ``type`` (deb, apk, rpm, pypi,
npm, maven, golang), ``name``, ``version``, optional ``arch``, ``source_name``, ``source_version``,
``namespace`` (maven group), ``epoch``, ``release``, ``path`` (where it was found).
"""

from __future__ import annotations

import json
import re
import sqlite3
import struct
import tempfile
from email.parser import BytesHeaderParser
from typing import Any

Package = dict[str, Any]

DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_D = "var/lib/dpkg/status.d"
APK_INSTALLED = "lib/apk/db/installed"
RPM_SQLITE = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")
RPM_BDB = ("var/lib/rpm/Packages", "usr/lib/sysimage/rpm/Packages")
RPM_NDB = ("var/lib/rpm/Packages.db", "usr/lib/sysimage/rpm/Packages.db")
PY_METADATA = re.compile(r"(^|/)[^/]+\.dist-info/METADATA$|(^|/)[^/]+\.egg-info(/PKG-INFO)?$")
NPM_PACKAGE = re.compile(r"(^|/)node_modules/(@[^/]+/)?[^/]+/package\.json$")


def _stanzas(text: str) -> list[dict[str, str]]:
    """RFC 822-style stanzas separated by blank lines; continuation lines are folded away."""
    out: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                out.append(current)
            current, key = {}, ""
        elif line[0] in " \t":
            if key:
                current[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            current[key.strip()] = value.strip()
    if current:
        out.append(current)
    return out


def parse_dpkg(data: bytes, path: str) -> list[Package]:
    """``var/lib/dpkg/status`` or a distroless ``status.d/*`` file; only packages in state installed."""
    packages = []
    for stanza in _stanzas(data.decode("utf-8", "replace")):
        name, version = stanza.get("Package"), stanza.get("Version")
        status = stanza.get("Status", "install ok installed").split()
        if not name or not version or status[-1:] != ["installed"]:
            continue
        source_name, source_version = name, version
        if stanza.get("Source"):
            source = stanza["Source"].split()
            source_name = source[0]
            if len(source) > 1:
                source_version = source[1].strip("()")
        packages.append(
            {
                "type": "deb",
                "name": name,
                "version": version,
                "arch": stanza.get("Architecture", ""),
                "source_name": source_name,
                "source_version": source_version,
                "path": path,
            }
        )
    return packages


def parse_apk(data: bytes, path: str) -> list[Package]:
    """``lib/apk/db/installed``: P name, V version, A arch, o origin (the source package)."""
    packages = []
    for block in data.decode("utf-8", "replace").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if len(line) > 2 and line[1] == ":" and line[0] not in fields:
                fields[line[0]] = line[2:]
        if "P" in fields and "V" in fields:
            packages.append(
                {
                    "type": "apk",
                    "name": fields["P"],
                    "version": fields["V"],
                    "arch": fields.get("A", ""),
                    "source_name": fields.get("o", fields["P"]),
                    "source_version": fields["V"],
                    "path": path,
                }
            )
    return packages


# rpm header tags and types (rpm's lib/rpmtag.h)
RPMTAG_NAME, RPMTAG_VERSION, RPMTAG_RELEASE, RPMTAG_EPOCH, RPMTAG_ARCH, RPMTAG_SOURCERPM = (
    1000,
    1001,
    1002,
    1003,
    1022,
    1044,
)
RPM_INT32, RPM_STRING = 4, 6


def parse_rpm_header(blob: bytes) -> dict[int, str | int]:
    """The tags we need from one rpm header blob (as stored in rpmdb.sqlite: no lead, no magic)."""
    count, data_len = struct.unpack(">II", blob[:8])
    index_end = 8 + 16 * count
    store = blob[index_end : index_end + data_len]
    out: dict[int, str | int] = {}
    for i in range(count):
        tag, kind, offset, _n = struct.unpack(">IIII", blob[8 + 16 * i : 24 + 16 * i])
        if tag not in (RPMTAG_NAME, RPMTAG_VERSION, RPMTAG_RELEASE, RPMTAG_EPOCH, RPMTAG_ARCH, RPMTAG_SOURCERPM):
            continue
        if kind == RPM_STRING:
            end = store.index(b"\0", offset)
            out[tag] = store[offset:end].decode("utf-8", "replace")
        elif kind == RPM_INT32:
            out[tag] = struct.unpack(">I", store[offset : offset + 4])[0]
    return out


def _source_name(srpm: str) -> tuple[str, str]:
    """``openssl-3.0.7-2.fc39.src.rpm`` → (``openssl``, ``3.0.7-2.fc39``)."""
    base = srpm.removesuffix(".rpm").rsplit(".", 1)[0]
    parts = base.rsplit("-", 2)
    return (parts[0], f"{parts[1]}-{parts[2]}") if len(parts) == 3 else (base, "")


def parse_rpm_sqlite(data: bytes, path: str) -> list[Package]:
    """``rpmdb.sqlite``: the ``Packages`` table holds one header blob per installed package."""
    with tempfile.NamedTemporaryFile(suffix=".sqlite") as tmp:
        tmp.write(data)
        tmp.flush()
        conn = sqlite3.connect(f"file:{tmp.name}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT blob FROM Packages").fetchall()
        finally:
            conn.close()
    packages = []
    for (blob,) in rows:
        tags = parse_rpm_header(bytes(blob))
        name = str(tags.get(RPMTAG_NAME, ""))
        if not name or name == "gpg-pubkey":
            continue
        version, release = str(tags.get(RPMTAG_VERSION, "")), str(tags.get(RPMTAG_RELEASE, ""))
        epoch = tags.get(RPMTAG_EPOCH)
        full = f"{version}-{release}" if release else version
        if epoch:
            full = f"{epoch}:{full}"
        source_name, source_version = _source_name(str(tags.get(RPMTAG_SOURCERPM, "")))
        packages.append(
            {
                "type": "rpm",
                "name": name,
                "version": full,
                "arch": str(tags.get(RPMTAG_ARCH, "")),
                "epoch": epoch,
                "source_name": source_name or name,
                "source_version": (f"{epoch}:{source_version}" if epoch and source_version else source_version) or full,
                "path": path,
            }
        )
    return packages


def parse_python(data: bytes, path: str) -> list[Package]:
    headers = BytesHeaderParser().parsebytes(data)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        return []
    return [{"type": "pypi", "name": str(name), "version": str(version), "path": path}]


def parse_npm(data: bytes, path: str) -> list[Package]:
    try:
        doc = json.loads(data)
    except ValueError:
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str) or not isinstance(doc.get("version"), str):
        return []
    return [{"type": "npm", "name": doc["name"], "version": doc["version"], "path": path}]


def parse_os_release(data: bytes) -> dict[str, str]:
    out = {}
    for line in data.decode("utf-8", "replace").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip().strip("\"'")
    return out
