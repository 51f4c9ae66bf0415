"""RegistryService: the OCI distribution semantics on top of a BlobStore and a MetadataStore.

HTTP-free: it takes and returns values and raises RegistryError; ``registry.api`` shapes responses.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from registry.oci import errors as e
from registry.oci.digest import Digest, Hasher
from registry.oci.manifest import parse_manifest
from registry.oci.names import parse_reference, validate_name
from registry.storage.interfaces import BlobStore, MetadataStore, UploadWriter
from registry.storage.records import ManifestRecord, ManifestRef, Referrer, UploadSession
from registry.storage.usage import UsageTracker

Body = AsyncIterator[bytes]
READ_CHUNK = 1024 * 1024
WRITE_PIECE = 1024 * 1024
WRITE_DEPTH = 2


def first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first concrete exception of a (nested) exception group: what callers should see when a
    helper task of a nursery failed (a client disconnect, a storage error, a cancellation)."""
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf


class ClientDisconnected(Exception):
    """The request body ended before its announced length (the client went away)."""


@dataclass(frozen=True)
class PushedManifest:
    digest: Digest
    subject: Digest | None


class RegistryService:
    """See module docstring.

    Upload sessions: a session's data lives in the BlobStore and its acknowledged size in the metadata
    store, so a session survives a restart. The running sha256 of each session is kept in memory between
    requests; after a restart (or in another process) the stored part is re-hashed once.
    """

    def __init__(self, blobs: BlobStore, meta: MetadataStore, manifest_max_bytes: int) -> None:
        self.blobs = blobs
        self.meta = meta
        self.manifest_max_bytes = manifest_max_bytes
        self._hashers: dict[str, tuple[int, Hasher]] = {}
        self._locks: dict[str, trio.Lock] = {}
        self.usage = UsageTracker()
        # Immutable-tag rules (set by the composition root): such tags can be neither moved nor deleted.
        self.immutable_tag: Callable[[str, str], bool] = lambda repo, tag: False

    # -- blobs ----------------------------------------------------------------------------------------
    async def blob_size(self, repo: str, digest: Digest) -> int:
        """Size of a blob linked in ``repo``. Raises ``BLOB_UNKNOWN``."""
        size = await self.meta.blob_size(repo, digest)
        if size is None:
            raise e.RegistryError(e.BLOB_UNKNOWN, detail={"digest": str(digest)})
        self.usage.touch_blob(str(digest), time.time())  # a client that HEADs a blob relies on it surviving
        return size

    async def read_blob(self, digest: Digest, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """Yield bytes ``start..end`` (inclusive) of a blob in pieces of at most 1 MiB.

        The caller has already checked membership with :meth:`blob_size`. Raises ``OSError`` if the
        content is missing or shorter than expected (the response is then aborted).
        """
        async with self.blobs.open_read(digest) as reader:
            offset = start
            while offset <= end:
                chunk = await reader.read(offset, min(READ_CHUNK, end - offset + 1))
                if not chunk:
                    raise OSError(f"blob {digest} is shorter than recorded")
                yield chunk
                offset += len(chunk)

    async def delete_blob(self, repo: str, digest: Digest) -> None:
        if not await self.meta.unlink_blob(repo, digest):
            raise e.RegistryError(e.BLOB_UNKNOWN, detail={"digest": str(digest)})

    async def mount_blob(self, repo: str, source: str, digest: Digest) -> bool:
        """Link ``digest`` from ``source`` into ``repo``; False when ``source`` does not have it."""
        validate_name(source)
        return await self.meta.mount_blob(repo, source, digest) is not None

    # -- uploads --------------------------------------------------------------------------------------
    async def start_upload(self, repo: str) -> UploadSession:
        upload_id = str(uuid.uuid4())
        now = time.time()
        writer = await self.blobs.open_upload(upload_id, 0, None)
        await writer.aclose()
        await self.meta.create_upload(repo, upload_id, now)
        return UploadSession(upload_id, repo, 0, now, now)

    async def upload(self, repo: str, upload_id: str) -> UploadSession:
        session = await self.meta.get_upload(repo, upload_id)
        if session is None:
            raise e.RegistryError(e.BLOB_UPLOAD_UNKNOWN, detail={"uuid": upload_id[:100]})
        return session

    @asynccontextmanager
    async def _lock(self, upload_id: str) -> AsyncIterator[None]:
        """One request at a time per upload: in this process, then across worker processes."""
        async with self._locks.setdefault(upload_id, trio.Lock()), self.blobs.lock_upload(upload_id):
            yield

    async def _open_writer(self, session: UploadSession) -> UploadWriter:
        cached = self._hashers.get(session.id)
        hasher = cached[1] if cached is not None and cached[0] == session.size else None
        try:
            return await self.blobs.open_upload(session.id, session.size, hasher)
        except FileNotFoundError:
            await self._forget(session.id)
            raise e.RegistryError(
                e.BLOB_UPLOAD_UNKNOWN, "upload data was lost; start a new upload", {"uuid": session.id}
            ) from None

    async def _forget(self, upload_id: str) -> None:
        self._hashers.pop(upload_id, None)
        self._locks.pop(upload_id, None)
        await self.meta.delete_upload(upload_id)
        await self.blobs.discard_upload(upload_id)

    @staticmethod
    async def _receive(writer: UploadWriter, body: Body, expected: int | None) -> None:
        """Write ``body`` to ``writer``; on any failure truncate back to where it started.

        Pipelined: the event loop gathers the body into pieces of ``WRITE_PIECE`` bytes while a worker
        thread writes and hashes the previous piece (both release the GIL), so parsing, hashing and disk
        writes overlap on two cores. At most ``WRITE_DEPTH + 2`` pieces are in memory per upload.
        """
        start = writer.size

        async def write_pieces(pieces: trio.MemoryReceiveChannel[bytearray]) -> None:
            async with pieces:
                async for piece in pieces:
                    await trio.to_thread.run_sync(writer.write, piece)

        try:
            try:
                async with trio.open_nursery() as nursery:
                    send, receive = trio.open_memory_channel[bytearray](WRITE_DEPTH)
                    nursery.start_soon(write_pieces, receive)
                    async with send:
                        buffer = bytearray()
                        async for chunk in body:
                            buffer += chunk
                            if len(buffer) >= WRITE_PIECE:
                                await send.send(buffer)
                                buffer = bytearray()
                        if buffer:
                            await send.send(buffer)
            except BaseExceptionGroup as group:
                raise first_leaf(group) from None
            received = writer.size - start
            if expected is not None and received != expected:
                raise e.RegistryError(e.SIZE_INVALID, f"received {received} bytes, Content-Length said {expected}")
        except BaseException:
            with trio.CancelScope(shield=True):
                await writer.truncate(start)
            raise

    @staticmethod
    def _check_range(
        session: UploadSession, content_range: tuple[int, int] | None, content_length: int | None
    ) -> int | None:
        """Validate a chunk's ``Content-Range`` against the session; returns the expected length.

        Raises:
            RegistryError: 416 with the session's ``Range`` when the chunk does not start at the current
                offset (out of order or resent); ``SIZE_INVALID`` when range and length disagree.
        """
        if content_range is None:
            return content_length
        start, end = content_range
        if start != session.size:
            raise e.RegistryError(
                e.RANGE_INVALID,
                f"chunk starts at {start}, upload is at {session.size}",
                headers={"Range": f"0-{max(session.size - 1, 0)}"},
            )
        if content_length is not None and content_length != end - start + 1:
            raise e.RegistryError(e.SIZE_INVALID, "Content-Range and Content-Length disagree")
        return end - start + 1

    async def append_chunk(
        self,
        repo: str,
        upload_id: str,
        body: Body,
        content_range: tuple[int, int] | None,
        content_length: int | None,
    ) -> int:
        """PATCH: append a chunk. Returns the new acknowledged size.

        Raises:
            RegistryError: ``BLOB_UPLOAD_UNKNOWN``; 416 with the session's ``Range`` when the chunk does
                not start at the current offset; ``SIZE_INVALID`` on a length mismatch.
        """
        async with self._lock(upload_id):
            session = await self.upload(repo, upload_id)
            content_length = self._check_range(session, content_range, content_length)
            writer = await self._open_writer(session)
            try:
                await self._receive(writer, body, content_length)
                size = writer.size
                await self.meta.set_upload_size(upload_id, size, time.time())
                self._hashers[upload_id] = (size, writer.hasher)
            finally:
                await writer.aclose()
            return size

    async def finish_upload(
        self,
        repo: str,
        upload_id: str,
        digest: Digest,
        body: Body,
        content_length: int | None,
        content_range: tuple[int, int] | None = None,
    ) -> None:
        """PUT: append the final chunk (if any), verify ``digest``, commit durably, link into ``repo``.

        Raises:
            RegistryError: ``BLOB_UPLOAD_UNKNOWN``; ``DIGEST_INVALID`` when the content does not match
                (the session is discarded).
        """
        async with self._lock(upload_id):
            session = await self.upload(repo, upload_id)
            content_length = self._check_range(session, content_range, content_length)
            writer = await self._open_writer(session)
            try:
                await self._receive(writer, body, content_length)
                actual = await writer.digest(digest.algorithm)
                size = writer.size
            finally:
                await writer.aclose()
            if actual != digest:
                await self._forget(upload_id)
                raise e.RegistryError(
                    e.DIGEST_INVALID,
                    "provided digest did not match uploaded content",
                    {"expected": str(digest), "actual": str(actual)},
                )
            await self.blobs.commit_upload(upload_id, digest)
            try:
                await self.meta.commit_blob(repo, digest, size, upload_id, self._present(digest))
            except e.RegistryError:
                await self._forget(upload_id)
                raise
            # Only now: until the metadata committed, a crash had to leave the session able to finish.
            self._hashers.pop(upload_id, None)
            with trio.CancelScope(shield=True):
                await self.blobs.discard_upload(upload_id)
        self._locks.pop(upload_id, None)

    async def push_monolithic(self, repo: str, digest: Digest, body: Body, content_length: int | None) -> None:
        """POST ?digest=: the whole blob in one request, committed as :meth:`finish_upload` does."""
        upload_id = str(uuid.uuid4())
        writer = await self.blobs.open_upload(upload_id, 0, None)
        try:
            await self._receive(writer, body, content_length)
            actual = await writer.digest(digest.algorithm)
            size = writer.size
        except BaseException:
            await writer.aclose()
            with trio.CancelScope(shield=True):
                await self.blobs.discard_upload(upload_id)
            raise
        await writer.aclose()
        if actual != digest:
            await self.blobs.discard_upload(upload_id)
            raise e.RegistryError(
                e.DIGEST_INVALID,
                "provided digest did not match uploaded content",
                {"expected": str(digest), "actual": str(actual)},
            )
        await self.blobs.commit_upload(upload_id, digest)
        try:
            await self.meta.commit_blob(repo, digest, size, None, self._present(digest))
        finally:
            with trio.CancelScope(shield=True):
                await self.blobs.discard_upload(upload_id)

    def _present(self, digest: Digest) -> Callable[[], bool]:
        return lambda: self.blobs.contains(digest)

    async def cancel_upload(self, repo: str, upload_id: str) -> None:
        async with self._lock(upload_id):
            await self.upload(repo, upload_id)
            await self._forget(upload_id)

    async def purge_stale_uploads(self, before: float) -> int:
        """Remove sessions untouched since ``before``. Returns how many were removed."""
        stale = set(await self.meta.stale_uploads(before))
        # Data files without a live session: left by a crash during a monolithic push or a cancel.
        for upload_id in await self.blobs.upload_ids_older_than(before):
            if upload_id not in self._locks and not await self.meta.upload_exists(upload_id):
                stale.add(upload_id)
        for upload_id in stale:
            await self._forget(upload_id)
        return len(stale)

    # -- manifests ------------------------------------------------------------------------------------
    async def put_manifest(self, repo: str, reference: str, content_type: str | None, data: bytes) -> PushedManifest:
        """Validate and store a manifest exactly as sent.

        Raises:
            RegistryError: ``TAG_INVALID``/``DIGEST_INVALID`` (reference), 413 over the size limit,
                ``MANIFEST_INVALID``, ``DIGEST_INVALID`` when a digest reference does not match the
                bytes, ``MANIFEST_BLOB_UNKNOWN``.
        """
        ref = parse_reference(reference)
        if len(data) > self.manifest_max_bytes:
            raise e.RegistryError(e.MANIFEST_TOO_LARGE, detail={"limit": self.manifest_max_bytes})
        parsed = parse_manifest(data, content_type)
        digest = Digest.of(data, ref.algorithm if isinstance(ref, Digest) else "sha256")
        if isinstance(ref, Digest) and digest != ref:
            raise e.RegistryError(
                e.DIGEST_INVALID,
                "manifest digest does not match the reference",
                {"reference": str(ref), "actual": str(digest)},
            )
        refs = [ManifestRef(d.digest, "external" if d.is_external else "blob") for d in parsed.blobs]
        refs += [ManifestRef(d.digest, "child") for d in parsed.children]
        record = ManifestRecord(
            digest=digest,
            media_type=parsed.media_type,
            content=data,
            artifact_type=parsed.artifact_type,
            subject=None if parsed.subject is None else parsed.subject.digest,
            annotations_json=None if parsed.annotations is None else json.dumps(parsed.annotations),
        )
        tag = None if isinstance(ref, Digest) else ref
        await self.meta.put_manifest(repo, record, refs, tag, tag is not None and self.immutable_tag(repo, tag))
        return PushedManifest(digest, record.subject)

    @staticmethod
    def _lookup_reference(reference: str) -> str | Digest:
        """A reference to look up: a malformed digest is 400 ``DIGEST_INVALID``; a string that cannot be a
        tag names nothing, so it is 404 ``MANIFEST_UNKNOWN`` (what the conformance suite expects)."""
        try:
            return parse_reference(reference)
        except e.RegistryError as err:
            if err.code is e.TAG_INVALID:
                raise e.RegistryError(e.MANIFEST_UNKNOWN, detail={"reference": reference[:200]}) from None
            raise

    async def get_manifest(self, repo: str, reference: str) -> ManifestRecord:
        """Raises ``MANIFEST_UNKNOWN`` or ``DIGEST_INVALID``. A plain read: the registry's own readers (SBOM,
        scans, attestation) use it too, so it records no pull; the pull route calls :meth:`pulled`."""
        record = await self.meta.get_manifest(repo, self._lookup_reference(reference))
        if record is None:
            raise e.RegistryError(e.MANIFEST_UNKNOWN, detail={"reference": reference[:200]})
        return record

    def pulled(self, repo: str, record: ManifestRecord) -> None:
        """A client pulled ``record``: its time is batched for pull-based retention."""
        self.usage.pulled(repo, str(record.digest), time.time())

    async def delete_manifest(self, repo: str, reference: str) -> None:
        """Delete by digest (the manifest and its tags in ``repo``) or by tag (the tag only)."""
        ref = self._lookup_reference(reference)
        if isinstance(ref, Digest):
            found = await self.meta.delete_manifest(repo, ref, lambda tag: self.immutable_tag(repo, tag))
        else:
            if self.immutable_tag(repo, ref):
                raise e.RegistryError(e.DENIED, f"tag {ref} is immutable", {"tag": ref})
            found = await self.meta.delete_tag(repo, ref)
        if not found:
            raise e.RegistryError(e.MANIFEST_UNKNOWN, detail={"reference": reference[:200]})

    async def list_tags(self, repo: str, n: int, last: str | None) -> list[str]:
        tags = await self.meta.list_tags(repo, n, last)
        if tags is None:
            raise e.RegistryError(e.NAME_UNKNOWN, detail={"name": repo})
        return tags

    async def catalog(self, n: int, last: str | None) -> list[str]:
        return await self.meta.list_repositories(n, last)

    async def referrers(self, repo: str, subject: Digest, artifact_type: str | None) -> list[Referrer]:
        found = await self.meta.referrers(repo, subject)
        if artifact_type is not None:
            found = [r for r in found if r.artifact_type == artifact_type]
        return found
