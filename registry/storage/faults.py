"""Storage faults → registry errors: the one place that says which operating-system and SQLite failures a
client may see, and with which OCI error (the statuses live in ``registry.oci.errors``).

- no space (``ENOSPC``, ``EDQUOT``, ``SQLITE_FULL``): 507 ``UNAVAILABLE`` "insufficient storage";
- a data directory that cannot be written (``EROFS``, ``EACCES``, ``EPERM``, ``SQLITE_READONLY``,
  ``SQLITE_CANTOPEN``, ``SQLITE_IOERR``): 503 ``UNAVAILABLE``;
- the database locked by someone else past the busy timeout (``SQLITE_BUSY``, ``SQLITE_LOCKED``): 503
  ``UNAVAILABLE`` with ``Retry-After``.

Anything else is not a storage fault this module knows: the functions return None and the caller re-raises.
"""

from __future__ import annotations

import errno
import sqlite3

from registry.oci.errors import DATABASE_BUSY, INSUFFICIENT_STORAGE, STORAGE_UNWRITABLE, RegistryError

RETRY_AFTER_SECONDS = "5"
_FULL = {errno.ENOSPC, errno.EDQUOT}
_UNWRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


def os_fault(exc: OSError) -> RegistryError | None:
    """The registry error for a file-system failure, or None if it is not a known storage fault."""
    if exc.errno in _FULL:
        return RegistryError(INSUFFICIENT_STORAGE, "the registry's storage is full")
    if exc.errno in _UNWRITABLE:
        return RegistryError(STORAGE_UNWRITABLE, "the registry's data directory is not writable")
    return None


def sqlite_fault(exc: sqlite3.Error) -> RegistryError | None:
    """The registry error for a SQLite failure, or None if it is not a known storage fault."""
    primary = getattr(exc, "sqlite_errorcode", -1) & 0xFF
    if primary == sqlite3.SQLITE_FULL:
        return RegistryError(INSUFFICIENT_STORAGE, "the registry's storage is full")
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return RegistryError(
            DATABASE_BUSY, "the registry's database is locked; retry", headers={"Retry-After": RETRY_AFTER_SECONDS}
        )
    if primary in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR):
        return RegistryError(STORAGE_UNWRITABLE, "the registry's database is not writable")
    return None
