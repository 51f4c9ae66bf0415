"""The storage seams as small role Protocols.

A later S3 + PostgreSQL backend implements the same Protocols and passes the same contract suites
(``tests/contracts``). Every method is async; implementations keep blocking I/O off the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from registry.oci.digest import Digest, Hasher
from registry.storage.records import (
    BlobRow,
    Event,
    ManifestRecord,
    ManifestRef,
    Referrer,
    UploadSession,
)


class UploadWriter(Protocol):
    """An open upload's data: appended to in order, hashed while written."""

    @property
    def size(self) -> int: ...

    @property
    def hasher(self) -> Hasher:
        """The running sha256 over exactly ``size`` bytes (kept to resume the session cheaply)."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data`` and feed it to the running sha256. Cheap: called inline per ~1 MiB."""

    async def truncate(self, size: int) -> None:
        """Drop everything after ``size`` bytes (a chunk that failed half-way)."""

    async def digest(self, algorithm: str) -> Digest:
        """The digest of everything written so far (re-hashes for algorithms other than sha256)."""

    async def aclose(self) -> None: ...


class BlobStore(Protocol):
    """Content-addressed blob bytes plus the upload area they are ingested through."""

    async def stat(self, digest: Digest) -> int | None:
        """Size of the stored blob, or None."""

    def open_read(self, digest: Digest) -> AbstractAsyncContextManager[BlobReader]:
        """Open a stored blob for reading. Raises ``FileNotFoundError`` if absent."""

    async def open_upload(self, upload_id: str, size: int, hasher: Hasher | None) -> UploadWriter:
        """Open (creating if ``size`` is 0 and it does not exist) the upload data of ``upload_id``,
        truncated to the acknowledged ``size``. ``hasher`` resumes a running sha256 over exactly ``size``
        bytes; without it the stored part is re-hashed. Raises ``FileNotFoundError`` if the data is gone
        or shorter than ``size``."""

    async def commit_upload(self, upload_id: str, digest: Digest) -> None:
        """Durably place the upload's data at ``digest``'s content path (fsync file, link, fsync directory).
        The upload data stays (so a crash before the metadata commits leaves the session resumable) until
        :meth:`discard_upload`; if the content already exists nothing is written. Reopening an upload with
        :meth:`open_upload` afterwards never writes through into the committed content."""

    def lock_upload(self, upload_id: str) -> AbstractAsyncContextManager[None]:
        """An exclusive lock on one upload that holds across processes (``server.workers``)."""

    async def discard_upload(self, upload_id: str) -> None: ...

    async def delete(self, digest: Digest) -> None: ...

    def contains(self, digest: Digest) -> bool:
        """Whether the content exists (blocking and cheap: callable from a worker thread)."""

    async def upload_ids_older_than(self, before: float) -> list[str]:
        """Upload data not written to since ``before`` (including data whose session row is gone)."""

    def walk(self) -> AsyncIterator[Digest]:
        """Every stored digest (for fsck; not on any request path)."""


class BlobReader(Protocol):
    size: int

    async def read(self, offset: int, length: int) -> bytes: ...


class BlobIndex(Protocol):
    """Which repositories link which blobs. A blob is served only in repositories that link it."""

    async def blob_size(self, repo: str, digest: Digest) -> int | None: ...
    async def commit_blob(
        self,
        repo: str,
        digest: Digest,
        size: int,
        upload_id: str | None,
        present: Callable[[], bool] | None = None,
    ) -> None:
        """Record and link a blob; ``present`` (blocking) is called inside the transaction to confirm the
        content still exists. Raises ``UNAVAILABLE`` while garbage collection is deleting ``digest``."""

    async def mount_blob(self, repo: str, source: str, digest: Digest) -> int | None: ...
    async def unlink_blob(self, repo: str, digest: Digest) -> bool: ...
    async def all_blobs(self) -> list[BlobRow]: ...


class ManifestIndex(Protocol):
    async def put_manifest(
        self,
        repo: str,
        record: ManifestRecord,
        refs: Sequence[ManifestRef],
        tag: str | None,
        immutable: bool = False,
    ) -> None:
        """Store, link and optionally tag a manifest in one transaction.

        Raises:
            RegistryError: ``MANIFEST_BLOB_UNKNOWN`` if a referenced blob or child is not in ``repo``;
                ``DENIED`` when ``immutable`` and ``tag`` already names another manifest.
        """

    async def get_manifest(self, repo: str, reference: str | Digest) -> ManifestRecord | None: ...
    async def delete_manifest(self, repo: str, digest: Digest, protected: Callable[[str], bool] | None = None) -> bool:
        """Unlink a manifest and its tags. Raises ``DENIED`` if ``protected`` (called inside the
        transaction) is true for one of its tags."""

    async def delete_tag(self, repo: str, tag: str) -> bool: ...
    async def list_tags(self, repo: str, n: int, last: str | None) -> list[str] | None: ...
    async def list_repositories(self, n: int, last: str | None) -> list[str]: ...
    async def referrers(self, repo: str, subject: Digest) -> list[Referrer]: ...
    async def all_manifest_refs(self) -> list[tuple[str, Digest, Digest, str]]:
        """``(repo, manifest, referenced, kind)`` for every linked manifest (for fsck)."""


class UploadIndex(Protocol):
    async def create_upload(self, repo: str, upload_id: str, now: float) -> None: ...
    async def get_upload(self, repo: str, upload_id: str) -> UploadSession | None: ...
    async def upload_exists(self, upload_id: str) -> bool: ...
    async def set_upload_size(self, upload_id: str, size: int, now: float) -> None: ...
    async def delete_upload(self, upload_id: str) -> None: ...
    async def stale_uploads(self, before: float) -> list[str]: ...


class Outbox(Protocol):
    """Domain events, written in the same transaction as the change they describe."""

    async def events_after(self, cursor: int, limit: int) -> list[Event]: ...
    async def cursor(self, subscriber: str) -> int: ...
    async def set_cursor(self, subscriber: str, event_id: int) -> None: ...


class MetadataStore(BlobIndex, ManifestIndex, UploadIndex, Outbox, Protocol):
    """Everything the registry keeps besides blob bytes."""

    async def aclose(self) -> None: ...
