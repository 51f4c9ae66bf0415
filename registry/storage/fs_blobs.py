"""FilesystemBlobStore: blob bytes on a local filesystem, content-addressed.

On-disk layout under the data directory::

    blobs/<algorithm>/<first two hex chars>/<hex>   committed content, immutable, shared by all repos
    uploads/<upload id>                             data of an open upload session

Durability rule (how a 201 is guaranteed to survive a crash): ``commit_upload`` fsyncs the upload file,
hard-links it to its content path (atomic on POSIX), and fsyncs the directory that now holds the name (and
each directory it had to create, bottom-up). Only after it returns does the service commit the metadata
transaction (``synchronous=FULL``: the WAL is fsynced), then remove the upload file with
``discard_upload``; only after that does the HTTP layer answer 201. A crash before the link leaves only an
upload file; a crash between link and metadata commit leaves an unreferenced content file (reported by
fsck, removed by GC) *and* the upload data, so the session can still be finished — never a visible partial
blob. Such an upload file shares its inode with the content file: ``open_upload`` gives it a private copy
before anything can be written to it. (Where hard links are not supported the file is renamed instead,
and that crash window loses the session's data: the client must upload again.)

Data is written in worker threads in pieces of 1 MiB, pipelined with the event loop (which parses HTTP
meanwhile); every fsync, re-hash and directory operation runs in a worker thread too. Reads are served on
the event loop from the page cache with kernel readahead one piece ahead (see ``FilesystemBlobReader``).
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import trio

from registry.oci.digest import ALGORITHMS, Digest, Hasher, new_hasher
from registry.oci.errors import RegistryError
from registry.storage.faults import os_fault

READ_CHUNK = 1024 * 1024
LOCK_POLL_SECONDS = 0.01


def _storage_error(exc: OSError) -> RegistryError:
    """The registry error for ``exc`` (see ``registry.storage.faults``); re-raises anything else."""
    fault = os_fault(exc)
    if fault is None:
        raise exc
    return fault


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


def _private_copy(fd: int, path: Path) -> int:
    """Replace the upload file ``path`` (open as ``fd``, which is closed) with a copy of itself that shares
    no inode with a content file; return the copy's descriptor. Blocking: run in a worker thread."""
    temp = path.with_name(path.name + "-copy")  # a valid upload id: purged with orphans if a crash leaves it
    try:
        out = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    finally:
        os.close(fd)
    try:
        with open(path, "rb") as source:
            while chunk := source.read(READ_CHUNK * 4):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view) :]
        os.fsync(out)
        os.replace(temp, path)
    except BaseException:
        os.close(out)
        raise
    return out


def _hash_file(fd: int, size: int, algorithm: str) -> Hasher:
    hasher = new_hasher(algorithm)
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(READ_CHUNK * 4, size - offset), offset)
        if not chunk:
            raise FileNotFoundError(errno.ENOENT, "upload data shorter than acknowledged")
        hasher.update(chunk)
        offset += len(chunk)
    return hasher


class FilesystemUpload:
    """Upload data file, appended in order and hashed (sha256) while written."""

    def __init__(self, fd: int, size: int, hasher: Hasher) -> None:
        self._fd = fd
        self._size = size
        self.hasher = hasher

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
                self._size += written
        except OSError as exc:
            raise _storage_error(exc) from exc
        self.hasher.update(data)

    async def truncate(self, size: int) -> None:
        """Drop bytes after ``size``; the running hash is rebuilt from the file."""
        if size == self._size:
            return
        os.ftruncate(self._fd, size)
        os.lseek(self._fd, size, os.SEEK_SET)
        self._size = size
        self.hasher = await trio.to_thread.run_sync(_hash_file, self._fd, size, "sha256")

    async def digest(self, algorithm: str) -> Digest:
        if algorithm == "sha256":
            return Digest("sha256", self.hasher.copy().hexdigest())
        hasher = await trio.to_thread.run_sync(_hash_file, self._fd, self._size, algorithm)
        return Digest(algorithm, hasher.hexdigest())

    async def aclose(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


class FilesystemBlobReader:
    """Reads of one open content file, in order, on the calling thread.

    A read of 1 MiB from the page cache costs less than the ``to_thread`` round trip it would need (and that
    round trip contends for the GIL with the event loop that sends the bytes), so pieces are read with
    ``pread`` directly, and each read asks the kernel to start fetching the *next* piece
    (``POSIX_FADV_WILLNEED``): by the time the loop needs it, it is normally cached. Only the first piece of a
    blob not in the page cache makes the loop wait for the disk (one read of at most 1 MiB).
    """

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self.size = size

    async def read(self, offset: int, length: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        following = offset + len(data)
        if following < self.size:
            os.posix_fadvise(self._fd, following, min(length, self.size - following), os.POSIX_FADV_WILLNEED)
        return data


class FilesystemBlobStore:
    """See the module docstring for layout and durability."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.uploads = root / "uploads"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.uploads.mkdir(parents=True, exist_ok=True)

    def blob_path(self, digest: Digest) -> Path:
        return self.blobs / digest.algorithm / digest.encoded[:2] / digest.encoded

    def _upload_path(self, upload_id: str) -> Path:
        if not upload_id.replace("-", "").isalnum():
            raise FileNotFoundError(errno.ENOENT, "invalid upload id")
        return self.uploads / upload_id

    async def stat(self, digest: Digest) -> int | None:
        try:
            return (await trio.to_thread.run_sync(os.stat, self.blob_path(digest))).st_size
        except FileNotFoundError:
            return None

    @asynccontextmanager
    async def open_read(self, digest: Digest) -> AsyncIterator[FilesystemBlobReader]:
        fd = os.open(self.blob_path(digest), os.O_RDONLY)
        try:
            yield FilesystemBlobReader(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)

    async def open_upload(self, upload_id: str, size: int, hasher: Hasher | None) -> FilesystemUpload:
        path = self._upload_path(upload_id)

        def open_() -> FilesystemUpload:
            flags = os.O_RDWR | (os.O_CREAT if size == 0 else 0)
            try:
                fd = os.open(path, flags, 0o600)
            except OSError as exc:
                raise _storage_error(exc) from exc
            if os.fstat(fd).st_nlink > 1:  # also a committed content file (a crash before its metadata)
                try:
                    fd = _private_copy(fd, path)  # closes ``fd`` whatever happens
                except OSError as exc:
                    raise _storage_error(exc) from exc
            try:
                if os.fstat(fd).st_size < size:
                    raise FileNotFoundError(errno.ENOENT, "upload data shorter than acknowledged")
                os.ftruncate(fd, size)
                os.lseek(fd, size, os.SEEK_SET)
                return FilesystemUpload(fd, size, hasher or _hash_file(fd, size, "sha256"))
            except BaseException:
                os.close(fd)
                raise

        return await trio.to_thread.run_sync(open_)

    async def commit_upload(self, upload_id: str, digest: Digest) -> None:
        source = self._upload_path(upload_id)
        target = self.blob_path(digest)

        def commit() -> None:
            fd = os.open(source, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            created = []
            for parent in (target.parent.parent, target.parent):
                if not parent.exists():
                    parent.mkdir(exist_ok=True)
                    created.append(parent)
            if target.exists():  # the content is already there: the upload data goes with discard_upload
                return
            try:
                os.link(source, target)
            except FileExistsError:  # another upload of the same content won the race
                return
            except OSError as exc:
                if exc.errno not in _NO_HARD_LINKS:
                    raise
                os.rename(source, target)
            _fsync_dir(target.parent)
            for parent in reversed(created):
                _fsync_dir(parent.parent)

        try:
            await trio.to_thread.run_sync(commit)
        except OSError as exc:
            raise _storage_error(exc) from exc

    @asynccontextmanager
    async def lock_upload(self, upload_id: str) -> AsyncIterator[None]:
        """Hold an exclusive advisory lock (``flock``) on the upload's data file, so requests for one upload
        in several worker processes run one at a time. Data that is gone is not locked (opening it then
        fails as usual)."""
        try:
            fd = os.open(self._upload_path(upload_id), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            yield
            return
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await trio.sleep(LOCK_POLL_SECONDS)
            yield
        finally:
            os.close(fd)  # releases the lock

    async def discard_upload(self, upload_id: str) -> None:
        with suppress(FileNotFoundError):
            await trio.to_thread.run_sync(os.unlink, self._upload_path(upload_id))

    async def delete(self, digest: Digest) -> None:
        with suppress(FileNotFoundError):
            await trio.to_thread.run_sync(os.unlink, self.blob_path(digest))

    def contains(self, digest: Digest) -> bool:
        return self.blob_path(digest).is_file()

    async def upload_ids_older_than(self, before: float) -> list[str]:
        return await trio.to_thread.run_sync(upload_files_older_than, self, before)

    async def walk(self) -> AsyncIterator[Digest]:
        for algorithm in ALGORITHMS:
            base = self.blobs / algorithm
            if not base.is_dir():
                continue
            for prefix in sorted(base.iterdir()):
                for entry in sorted(prefix.iterdir()):
                    yield Digest(algorithm, entry.name)


def upload_files_older_than(store: FilesystemBlobStore, before: float) -> list[str]:
    """Ids of upload data files last modified before ``before`` (blocking; run in a thread)."""
    found = []
    for entry in os.scandir(store.uploads):
        try:
            if entry.is_file() and entry.stat().st_mtime < before:
                found.append(entry.name)
        except FileNotFoundError:
            continue
    return found
