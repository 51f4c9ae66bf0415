"""The one error table: every OCI error code with its HTTP status, and the JSON envelope.

Storage and services raise :class:`RegistryError`; the HTTP layer renders it with :func:`envelope`.
No route picks a status on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ErrorCode:
    """An OCI error code (``code``), its default message and the HTTP status it is answered with."""

    code: str
    message: str
    status: int


BLOB_UNKNOWN = ErrorCode("BLOB_UNKNOWN", "blob unknown to registry", 404)
BLOB_UPLOAD_INVALID = ErrorCode("BLOB_UPLOAD_INVALID", "blob upload invalid", 400)
BLOB_UPLOAD_UNKNOWN = ErrorCode("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404)
RANGE_INVALID = ErrorCode("BLOB_UPLOAD_INVALID", "requested range is out of order or invalid", 416)
RANGE_NOT_SATISFIABLE = ErrorCode("RANGE_INVALID", "requested range not satisfiable", 416)
DIGEST_INVALID = ErrorCode("DIGEST_INVALID", "provided digest did not match uploaded content", 400)
MANIFEST_BLOB_UNKNOWN = ErrorCode("MANIFEST_BLOB_UNKNOWN", "manifest references a blob unknown to registry", 400)
MANIFEST_INVALID = ErrorCode("MANIFEST_INVALID", "manifest invalid", 400)
MANIFEST_UNKNOWN = ErrorCode("MANIFEST_UNKNOWN", "manifest unknown to registry", 404)
MANIFEST_TOO_LARGE = ErrorCode("SIZE_INVALID", "manifest exceeds the size limit", 413)
NAME_INVALID = ErrorCode("NAME_INVALID", "invalid repository name", 400)
NAME_UNKNOWN = ErrorCode("NAME_UNKNOWN", "repository name not known to registry", 404)
SIZE_INVALID = ErrorCode("SIZE_INVALID", "provided length did not match content length", 400)
TAG_INVALID = ErrorCode("TAG_INVALID", "invalid tag", 400)
UNAUTHORIZED = ErrorCode("UNAUTHORIZED", "authentication required", 401)
DENIED = ErrorCode("DENIED", "requested access to the resource is denied", 403)
UNSUPPORTED = ErrorCode("UNSUPPORTED", "the operation is unsupported", 405)
GRANT_UNSUPPORTED = ErrorCode("UNSUPPORTED", "unsupported grant_type", 400)
METHOD_NOT_ALLOWED = ErrorCode("UNSUPPORTED", "method not allowed", 405)
NOT_FOUND = ErrorCode("NOT_FOUND", "not found", 404)
INVALID = ErrorCode("INVALID", "invalid request parameter", 400)
PAGINATION_INVALID = ErrorCode("PAGINATION_NUMBER_INVALID", "invalid number of results requested", 400)
TOO_MANY_REQUESTS = ErrorCode("TOOMANYREQUESTS", "too many requests", 429)
REQUEST_TOO_LARGE = ErrorCode("SIZE_INVALID", "request body too large", 413)
MALFORMED_REQUEST = ErrorCode("UNSUPPORTED", "malformed request: a path or header that cannot be relayed", 400)
UNAVAILABLE = ErrorCode("UNAVAILABLE", "service unavailable", 503)
INSUFFICIENT_STORAGE = ErrorCode("UNAVAILABLE", "insufficient storage", 507)
STORAGE_UNWRITABLE = ErrorCode("UNAVAILABLE", "storage is not writable", 503)
DATABASE_BUSY = ErrorCode("UNAVAILABLE", "database is busy", 503)
UNKNOWN = ErrorCode("UNKNOWN", "unknown error", 500)


@dataclass
class RegistryError(Exception):
    """An error with an OCI code. ``detail`` is any JSON value that helps a client; ``headers`` are extra
    response headers (``Range`` on a 416, ``Retry-After`` on a 429, ``WWW-Authenticate`` on a 401)."""

    code: ErrorCode
    message: str | None = None
    detail: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message or self.code.message)

    @property
    def status(self) -> int:
        return self.code.status


def envelope(*errors: RegistryError) -> bytes:
    """The OCI error body: ``{"errors": [{"code", "message", "detail"}]}``."""
    items = []
    for err in errors:
        item: dict[str, Any] = {"code": err.code.code, "message": err.message or err.code.message}
        if err.detail is not None:
            item["detail"] = err.detail
        items.append(item)
    return json.dumps({"errors": items}, separators=(",", ":")).encode()
