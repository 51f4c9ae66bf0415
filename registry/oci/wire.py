"""Wire formats shared by registry and edge: Range, Content-Range, Link pagination, Basic credentials,
the pull-policy header."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from urllib.parse import quote

from registry.oci.errors import RANGE_NOT_SATISFIABLE, RegistryError

# On manifest answers (200 and 403 DENIED) of a repository under a pull policy of the registry (the scan policy):
# the policy's name, e.g. ``scan; namespace=team``. Caches in front of the registry revalidate such manifests with a
# short TTL instead of treating them as immutable (docs/edge.md "Pull policies").
PULL_POLICY_HEADER = "X-Registry-Pull-Policy"

_BYTES_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_UPLOAD_RANGE = re.compile(r"^(?:bytes[= ])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range ``[start, end]`` within an entity of ``length`` bytes."""

    start: int
    end: int
    length: int

    @property
    def size(self) -> int:
        return self.end - self.start + 1

    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.length}"


def parse_range(header: str | None, length: int) -> ByteRange | None:
    """Parse a ``Range: bytes=…`` request header against an entity of ``length`` bytes (RFC 9110 §14).

    Returns None when the header is absent or not a single byte range we understand (serve the whole
    entity, as RFC 9110 allows).

    Raises:
        RegistryError: 416 ``RANGE_INVALID`` with ``Content-Range: bytes */length`` when unsatisfiable.
    """
    if not header:
        return None
    match = _BYTES_RANGE.fullmatch(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last), length - 1) if last else length - 1
        if last and int(last) < start:  # "bytes=500-0": syntactically a range, never satisfiable
            raise RegistryError(RANGE_NOT_SATISFIABLE, headers={"Content-Range": f"bytes */{length}"})
    else:
        suffix = int(last)
        if suffix == 0:
            start, end = length, length - 1
        else:
            start, end = max(length - suffix, 0), length - 1
    if start >= length or end < start:
        raise RegistryError(RANGE_NOT_SATISFIABLE, headers={"Content-Range": f"bytes */{length}"})
    return ByteRange(start, end, length)


def parse_upload_range(header: str) -> tuple[int, int] | None:
    """Parse a chunk's ``Content-Range`` as clients send it on PATCH: ``start-end`` (inclusive).

    Accepts ``0-1023``, ``bytes=0-1023``, ``bytes 0-1023/2048``. Returns None if malformed.
    """
    match = _UPLOAD_RANGE.fullmatch(header.strip())
    if not match:
        return None
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        return None
    return start, end


def upload_range_header(size: int) -> str:
    """The ``Range`` header of an upload session holding ``size`` bytes: ``0-(size-1)``.

    An empty session answers ``0-0`` as Distribution does, which clients read as "nothing yet" only
    together with the Location (there is no way to express an empty inclusive range).
    """
    return f"0-{max(size - 1, 0)}"


def next_link(path: str, n: int, last: str, extra: dict[str, str] | None = None) -> str:
    """A pagination ``Link`` header value: ``<path?n=N&last=X>; rel="next"``."""
    query = f"n={n}&last={quote(last, safe='')}"
    for key, value in (extra or {}).items():
        query += f"&{key}={quote(value, safe='')}"
    return f'<{path}?{query}>; rel="next"'


def parse_basic(header: str) -> tuple[str, str] | None:
    """The ``(username, password)`` of an ``Authorization: Basic <base64>`` header value (RFC 7617).

    The caller has checked the scheme; only the part after the first space is decoded. Returns None when it is
    not valid base64, not UTF-8, or has no ``:`` (the password may be empty and may itself contain ``:``).
    """
    try:
        decoded = base64.b64decode(header.split(" ", 1)[1].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, IndexError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None
