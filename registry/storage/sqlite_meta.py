"""SqliteMetadataStore: the MetadataStore on the shared SQLite database (``<data>/registry.db``).

Connection handling, the single writer and durability are described in ``sqlite_db``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from registry.oci.digest import Digest
from registry.oci.errors import DENIED, MANIFEST_BLOB_UNKNOWN, UNAVAILABLE, RegistryError
from registry.storage.records import (
    BlobRow,
    Event,
    ManifestRecord,
    ManifestRef,
    Referrer,
    UploadSession,
)
from registry.storage.sqlite_db import SqliteDatabase, open_database

T = TypeVar("T")


class SqliteMetadataStore:
    """See module docstring. Create with :func:`open_sqlite_metadata` or around a shared database."""

    def __init__(self, db: SqliteDatabase, owns_db: bool = False) -> None:
        self.db = db
        self._owns_db = owns_db

    @property
    def on_commit(self) -> Callable[[], None] | None:
        return self.db.on_commit

    @on_commit.setter
    def on_commit(self, hook: Callable[[], None] | None) -> None:
        self.db.on_commit = hook

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self.db.read(fn)

    async def _read_inline(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self.db.read_inline(fn)

    async def _write(self, fn: Callable[[sqlite3.Connection], T], notify: bool = True) -> T:
        return await self.db.write(fn, notify)

    async def aclose(self) -> None:
        if self._owns_db:
            await self.db.aclose()

    @staticmethod
    def _event(
        conn: sqlite3.Connection,
        kind: str,
        repo: str,
        digest: str | None = None,
        tag: str | None = None,
        data: str | None = None,
    ) -> None:
        conn.execute(
            "INSERT INTO outbox(at, kind, repo, digest, tag, data) VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), kind, repo, digest, tag, data),
        )

    @staticmethod
    def _ensure_repo(conn: sqlite3.Connection, repo: str, now: float) -> None:
        conn.execute("INSERT OR IGNORE INTO repositories(name, created) VALUES (?, ?)", (repo, now))

    # -- blobs ----------------------------------------------------------------------------------------
    async def blob_size(self, repo: str, digest: Digest) -> int | None:
        def q(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(
                "SELECT b.size FROM repo_blobs r JOIN blobs b ON b.digest = r.digest WHERE r.repo = ? AND r.digest = ?",
                (repo, str(digest)),
            ).fetchone()
            return None if row is None else int(row[0])

        return await self._read_inline(q)

    async def commit_blob(
        self,
        repo: str,
        digest: Digest,
        size: int,
        upload_id: str | None,
        present: Callable[[], bool] | None = None,
    ) -> None:
        def w(conn: sqlite3.Connection) -> None:
            # Online GC deletes a blob's rows, then its file (tombstoned meanwhile). Holding the write lock,
            # refuse while a tombstone exists, and check the file is still there: an upload that found the
            # content present and discarded its own copy may have raced with that deletion.
            if conn.execute("SELECT 1 FROM gc_tombstones WHERE digest = ?", (str(digest),)).fetchone() or (
                present is not None and not present()
            ):
                raise RegistryError(
                    UNAVAILABLE, "the blob was being garbage-collected; push it again", {"digest": str(digest)}
                )
            now = time.time()
            self._ensure_repo(conn, repo, now)
            conn.execute(
                "INSERT INTO blobs(digest, size, created, last_ref) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(digest) DO UPDATE SET last_ref = excluded.last_ref",
                (str(digest), size, now, now),
            )
            conn.execute(
                "INSERT OR IGNORE INTO repo_blobs(repo, digest, created) VALUES (?, ?, ?)",
                (repo, str(digest), now),
            )
            if upload_id is not None:
                conn.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
            self._event(conn, "blob.pushed", repo, str(digest))

        await self._write(w)

    async def mount_blob(self, repo: str, source: str, digest: Digest) -> int | None:
        def w(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(
                "SELECT b.size FROM repo_blobs r JOIN blobs b ON b.digest = r.digest WHERE r.repo = ? AND r.digest = ?",
                (source, str(digest)),
            ).fetchone()
            if row is None:
                return None
            now = time.time()
            self._ensure_repo(conn, repo, now)
            conn.execute(
                "INSERT OR IGNORE INTO repo_blobs(repo, digest, created) VALUES (?, ?, ?)",
                (repo, str(digest), now),
            )
            conn.execute("UPDATE blobs SET last_ref = ? WHERE digest = ?", (now, str(digest)))
            self._event(conn, "blob.mounted", repo, str(digest), data=source)
            return int(row[0])

        return await self._write(w)

    async def unlink_blob(self, repo: str, digest: Digest) -> bool:
        def w(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM repo_blobs WHERE repo = ? AND digest = ?", (repo, str(digest)))
            if cur.rowcount:
                self._event(conn, "blob.deleted", repo, str(digest))
            return cur.rowcount > 0

        return await self._write(w)

    async def all_blobs(self) -> list[BlobRow]:
        def q(conn: sqlite3.Connection) -> list[BlobRow]:
            rows = conn.execute("SELECT digest, size FROM blobs ORDER BY digest").fetchall()
            return [BlobRow(Digest.parse(d), int(s)) for d, s in rows]

        return await self._read(q)

    # -- manifests ------------------------------------------------------------------------------------
    async def put_manifest(
        self,
        repo: str,
        record: ManifestRecord,
        refs: Sequence[ManifestRef],
        tag: str | None,
        immutable: bool = False,
    ) -> None:
        digest = str(record.digest)

        def w(conn: sqlite3.Connection) -> None:
            missing = []
            for ref in refs:
                if ref.kind == "blob":
                    sql = "SELECT 1 FROM repo_blobs WHERE repo = ? AND digest = ?"
                elif ref.kind == "child":
                    sql = "SELECT 1 FROM repo_manifests WHERE repo = ? AND digest = ?"
                else:
                    continue
                if conn.execute(sql, (repo, str(ref.digest))).fetchone() is None:
                    missing.append(str(ref.digest))
            if missing:
                raise RegistryError(
                    MANIFEST_BLOB_UNKNOWN,
                    f"manifest references {len(missing)} blob(s) or manifest(s) not in repository {repo}",
                    detail={"missing": missing[:20]},
                )
            now = time.time()
            self._ensure_repo(conn, repo, now)
            conn.execute(
                "INSERT OR IGNORE INTO manifests(digest, media_type, size, content, artifact_type, subject,"
                " annotations, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    digest,
                    record.media_type,
                    record.size,
                    record.content,
                    record.artifact_type,
                    None if record.subject is None else str(record.subject),
                    record.annotations_json,
                    now,
                ),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO manifest_refs(digest, ref, kind) VALUES (?, ?, ?)",
                [(digest, str(r.digest), r.kind) for r in refs],
            )
            new = conn.execute(
                "INSERT OR IGNORE INTO repo_manifests(repo, digest, pushed) VALUES (?, ?, ?)", (repo, digest, now)
            ).rowcount
            if record.subject is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO referrers(repo, subject, digest) VALUES (?, ?, ?)",
                    (repo, str(record.subject), digest),
                )
            if new:
                self._event(conn, "manifest.pushed", repo, digest, data=record.media_type)
            if tag is not None:
                old = conn.execute("SELECT digest FROM tags WHERE repo = ? AND tag = ?", (repo, tag)).fetchone()
                if immutable and old is not None and old[0] != digest:
                    raise RegistryError(DENIED, f"tag {tag} is immutable", {"tag": tag, "digest": old[0]})
                if old is None or old[0] != digest:
                    conn.execute(
                        "INSERT INTO tags(repo, tag, digest, updated) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT(repo, tag) DO UPDATE SET digest = excluded.digest, updated = excluded.updated",
                        (repo, tag, digest, now),
                    )
                    self._event(conn, "tag.moved", repo, digest, tag, None if old is None else old[0])

        await self._write(w)

    async def get_manifest(self, repo: str, reference: str | Digest) -> ManifestRecord | None:
        def q(conn: sqlite3.Connection) -> ManifestRecord | None:
            if isinstance(reference, Digest):
                row = conn.execute(
                    "SELECT m.digest, m.media_type, m.content, m.artifact_type, m.subject, m.annotations "
                    "FROM repo_manifests r JOIN manifests m ON m.digest = r.digest "
                    "WHERE r.repo = ? AND r.digest = ?",
                    (repo, str(reference)),
                ).fetchone()
            else:
                row = conn.execute(
                    "SELECT m.digest, m.media_type, m.content, m.artifact_type, m.subject, m.annotations "
                    "FROM tags t JOIN manifests m ON m.digest = t.digest WHERE t.repo = ? AND t.tag = ?",
                    (repo, reference),
                ).fetchone()
            if row is None:
                return None
            return ManifestRecord(
                digest=Digest.parse(row[0]),
                media_type=row[1],
                content=bytes(row[2]),
                artifact_type=row[3],
                subject=None if row[4] is None else Digest.parse(row[4]),
                annotations_json=row[5],
            )

        return await self._read_inline(q)

    async def delete_manifest(self, repo: str, digest: Digest, protected: Callable[[str], bool] | None = None) -> bool:
        def w(conn: sqlite3.Connection) -> bool:
            d = str(digest)
            if protected is not None:
                for (tag,) in conn.execute("SELECT tag FROM tags WHERE repo = ? AND digest = ?", (repo, d)):
                    if protected(tag):
                        raise RegistryError(DENIED, f"tag {tag} is immutable", {"tag": tag, "digest": d})
            cur = conn.execute("DELETE FROM repo_manifests WHERE repo = ? AND digest = ?", (repo, d))
            if not cur.rowcount:
                return False
            for (tag,) in conn.execute("SELECT tag FROM tags WHERE repo = ? AND digest = ?", (repo, d)).fetchall():
                self._event(conn, "tag.deleted", repo, d, tag)
            conn.execute("DELETE FROM tags WHERE repo = ? AND digest = ?", (repo, d))
            conn.execute("DELETE FROM referrers WHERE repo = ? AND digest = ?", (repo, d))
            self._event(conn, "manifest.deleted", repo, d)
            return True

        return await self._write(w)

    async def delete_tag(self, repo: str, tag: str) -> bool:
        def w(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT digest FROM tags WHERE repo = ? AND tag = ?", (repo, tag)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM tags WHERE repo = ? AND tag = ?", (repo, tag))
            self._event(conn, "tag.deleted", repo, row[0], tag)
            return True

        return await self._write(w)

    async def list_tags(self, repo: str, n: int, last: str | None) -> list[str] | None:
        def q(conn: sqlite3.Connection) -> list[str] | None:
            if conn.execute("SELECT 1 FROM repositories WHERE name = ?", (repo,)).fetchone() is None:
                return None
            rows = conn.execute(
                "SELECT tag FROM tags WHERE repo = ? AND tag > ? ORDER BY tag LIMIT ?", (repo, last or "", n)
            ).fetchall()
            return [r[0] for r in rows]

        return await self._read(q)

    async def list_repositories(self, n: int, last: str | None) -> list[str]:
        def q(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT name FROM repositories r WHERE name > ? AND (EXISTS (SELECT 1 FROM repo_manifests m "
                "WHERE m.repo = r.name) OR EXISTS (SELECT 1 FROM repo_blobs b WHERE b.repo = r.name)) "
                "ORDER BY name LIMIT ?",
                (last or "", n),
            ).fetchall()
            return [r[0] for r in rows]

        return await self._read(q)

    async def referrers(self, repo: str, subject: Digest) -> list[Referrer]:
        def q(conn: sqlite3.Connection) -> list[Referrer]:
            rows = conn.execute(
                "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM referrers r "
                "JOIN manifests m ON m.digest = r.digest WHERE r.repo = ? AND r.subject = ? ORDER BY m.digest",
                (repo, str(subject)),
            ).fetchall()
            return [Referrer(Digest.parse(d), mt, int(s), at, an) for d, mt, s, at, an in rows]

        return await self._read(q)

    async def all_manifest_refs(self) -> list[tuple[str, Digest, Digest, str]]:
        def q(conn: sqlite3.Connection) -> list[tuple[str, Digest, Digest, str]]:
            rows = conn.execute(
                "SELECT r.repo, f.digest, f.ref, f.kind FROM repo_manifests r "
                "JOIN manifest_refs f ON f.digest = r.digest ORDER BY r.repo, f.digest"
            ).fetchall()
            return [(repo, Digest.parse(d), Digest.parse(ref), kind) for repo, d, ref, kind in rows]

        return await self._read(q)

    async def memberships(self) -> tuple[set[tuple[str, Digest]], set[tuple[str, Digest]]]:
        """Every (repo, blob) and (repo, manifest) link (for fsck; not on any request path)."""

        def q(conn: sqlite3.Connection) -> tuple[set[tuple[str, Digest]], set[tuple[str, Digest]]]:
            blobs = {(r, Digest.parse(d)) for r, d in conn.execute("SELECT repo, digest FROM repo_blobs")}
            manifests = {(r, Digest.parse(d)) for r, d in conn.execute("SELECT repo, digest FROM repo_manifests")}
            return blobs, manifests

        return await self._read(q)

    async def record_usage(self, blobs: dict[str, float], pulls: dict[tuple[str, str], float]) -> None:
        """Write batched blob reference times and pull times (keeping the maximum) in one transaction."""

        def w(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE blobs SET last_ref = MAX(COALESCE(last_ref, 0), ?) WHERE digest = ?",
                [(at, digest) for digest, at in blobs.items()],
            )
            conn.executemany(
                "INSERT INTO pulls(repo, digest, at) VALUES (?, ?, ?) "
                "ON CONFLICT(repo, digest) DO UPDATE SET at = MAX(at, excluded.at)",
                [(repo, digest, at) for (repo, digest), at in pulls.items()],
            )

        await self._write(w, notify=False)

    # -- uploads --------------------------------------------------------------------------------------
    async def create_upload(self, repo: str, upload_id: str, now: float) -> None:
        def w(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO uploads(id, repo, size, created, updated) VALUES (?, ?, 0, ?, ?)",
                (upload_id, repo, now, now),
            )

        await self._write(w)

    async def get_upload(self, repo: str, upload_id: str) -> UploadSession | None:
        def q(conn: sqlite3.Connection) -> UploadSession | None:
            row = conn.execute(
                "SELECT id, repo, size, created, updated FROM uploads WHERE id = ? AND repo = ?", (upload_id, repo)
            ).fetchone()
            return None if row is None else UploadSession(row[0], row[1], int(row[2]), row[3], row[4])

        return await self._read(q)

    async def upload_exists(self, upload_id: str) -> bool:
        def q(conn: sqlite3.Connection) -> bool:
            return conn.execute("SELECT 1 FROM uploads WHERE id = ?", (upload_id,)).fetchone() is not None

        return await self._read(q)

    async def set_upload_size(self, upload_id: str, size: int, now: float) -> None:
        def w(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE uploads SET size = ?, updated = ? WHERE id = ?", (size, now, upload_id))

        await self._write(w)

    async def delete_upload(self, upload_id: str) -> None:
        await self._write(lambda conn: conn.execute("DELETE FROM uploads WHERE id = ?", (upload_id,)))

    async def stale_uploads(self, before: float) -> list[str]:
        def q(conn: sqlite3.Connection) -> list[str]:
            return [r[0] for r in conn.execute("SELECT id FROM uploads WHERE updated < ?", (before,))]

        return await self._read(q)

    # -- outbox ---------------------------------------------------------------------------------------
    async def events_after(self, cursor: int, limit: int) -> list[Event]:
        def q(conn: sqlite3.Connection) -> list[Event]:
            rows = conn.execute(
                "SELECT id, at, kind, repo, digest, tag, data FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (cursor, limit),
            ).fetchall()
            return [Event(*row) for row in rows]

        return await self._read(q)

    async def cursor(self, subscriber: str) -> int:
        def q(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT last_id FROM outbox_cursors WHERE subscriber = ?", (subscriber,)).fetchone()
            return 0 if row is None else int(row[0])

        return await self._read(q)

    async def set_cursor(self, subscriber: str, event_id: int) -> None:
        def w(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO outbox_cursors(subscriber, last_id) VALUES (?, ?) "
                "ON CONFLICT(subscriber) DO UPDATE SET last_id = excluded.last_id",
                (subscriber, event_id),
            )

        # Cursor moves are bookkeeping, not domain changes: they do not wake the outbox loop.
        await self._write(w, notify=False)


async def open_sqlite_metadata(path: Path) -> SqliteMetadataStore:
    """Open (creating the schema if needed) a database of its own and return a store on it. The caller
    must ``aclose()`` it."""
    return SqliteMetadataStore(await open_database(path), owns_db=True)
