"""What the edge knows about repositories: which repository links which digest, manifests by digest, and the last
confirmed tag → digest mappings. One SQLite file, ``<cache_dir>/edge.db`` (WAL)::

    links(repo, digest, confirmed_at)                 the upstream confirmed ``repo`` links ``digest``
    manifests(digest, media_type, content, stored_at) manifest bytes exactly as the upstream served them
    tags(repo, tag, digest, media_type, checked_at)   the tag's digest as of ``checked_at`` (wall clock)
    pull_policies(repo, policy, seen_at)              the upstream's last manifest answer for ``repo`` named a
                                                      pull policy (``X-Registry-Pull-Policy``)

``repo`` is the repository name for the default upstream and ``@<upstream id>/<name>`` for a further upstream
(:meth:`SqliteEdgeIndex.scoped`; ``@`` is not allowed in repository names), so the same name on two upstreams
never shares links, tags or policies. Manifests are keyed by digest alone (content-addressed), as are blobs.

Bounded: :meth:`SqliteEdgeIndex.prune` keeps at most ``IndexLimits`` rows per table, dropping the oldest
(``confirmed_at``/``stored_at``/``checked_at``/``seen_at``; ``pull_policies`` shares the ``tags`` limit). Dropping
is always safe: a dropped link or tag is asked of the upstream again, a dropped manifest is fetched again; a
dropped pull policy row only lengthens that repository's revalidation interval until the next upstream answer.

The adapter stores what it is given: it does not verify digests nor talk to the upstream. One connection,
used from worker threads one call at a time (a lock), so every call is ``trio.to_thread.run_sync``.
"""

from __future__ import annotations

import copy
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import trio

from registry.oci.digest import Digest

T = TypeVar("T")

_PRUNE_LINKS = (
    "SELECT count(*) FROM links",
    "DELETE FROM links WHERE (repo, digest) IN (SELECT repo, digest FROM links ORDER BY confirmed_at LIMIT ?)",
)
_PRUNE_MANIFESTS = (
    "SELECT count(*) FROM manifests",
    "DELETE FROM manifests WHERE digest IN (SELECT digest FROM manifests ORDER BY stored_at LIMIT ?)",
)
_PRUNE_TAGS = (
    "SELECT count(*) FROM tags",
    "DELETE FROM tags WHERE (repo, tag) IN (SELECT repo, tag FROM tags ORDER BY checked_at LIMIT ?)",
)
_PRUNE_POLICIES = (
    "SELECT count(*) FROM pull_policies",
    "DELETE FROM pull_policies WHERE repo IN (SELECT repo FROM pull_policies ORDER BY seen_at LIMIT ?)",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    repo TEXT NOT NULL, digest TEXT NOT NULL, confirmed_at REAL NOT NULL, PRIMARY KEY (repo, digest)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS manifests (
    digest TEXT PRIMARY KEY, media_type TEXT NOT NULL, content BLOB NOT NULL, stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    repo TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL,
    checked_at REAL NOT NULL, PRIMARY KEY (repo, tag)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pull_policies (
    repo TEXT PRIMARY KEY, policy TEXT NOT NULL, seen_at REAL NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class IndexLimits:
    """Most rows kept per table of edge.db."""

    links: int = 200_000
    manifests: int = 20_000
    tags: int = 50_000


@dataclass(frozen=True)
class StoredManifest:
    digest: Digest
    media_type: str
    content: bytes


@dataclass(frozen=True)
class TagEntry:
    digest: Digest
    media_type: str
    checked_at: float


class SqliteEdgeIndex:
    """Links, manifests and tags in SQLite. Open with :func:`open_edge_index`; ``close`` releases the file."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._scope = ""

    def scoped(self, upstream_id: str) -> SqliteEdgeIndex:
        """This index (same connection) with repositories in the namespace of the further upstream ``upstream_id``;
        closing stays with the unscoped index."""
        view = copy.copy(self)
        view._scope = f"@{upstream_id}/"
        return view

    def _key(self, repo: str) -> str:
        return self._scope + repo

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn(self._db)

        return await trio.to_thread.run_sync(locked)

    async def _execute(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return await self._run(lambda db: db.execute(sql, args).fetchall())

    async def link(self, repo: str, digest: Digest, now: float) -> None:
        await self._execute(
            "INSERT INTO links VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET confirmed_at = excluded.confirmed_at",
            (self._key(repo), str(digest), now),
        )

    async def is_linked(self, repo: str, digest: Digest) -> bool:
        rows = await self._execute("SELECT 1 FROM links WHERE repo = ? AND digest = ?", (self._key(repo), str(digest)))
        return bool(rows)

    async def confirmed_at(self, repo: str, digest: Digest) -> float | None:
        """When the upstream last confirmed that ``repo`` links ``digest`` (None: not linked)."""
        rows = await self._execute(
            "SELECT confirmed_at FROM links WHERE repo = ? AND digest = ?", (self._key(repo), str(digest))
        )
        return float(rows[0][0]) if rows else None

    async def set_pull_policy(self, repo: str, policy: str | None, now: float) -> None:
        """Remember (or, with None, forget) the pull policy the upstream named for ``repo``."""
        if policy is None:
            await self._execute("DELETE FROM pull_policies WHERE repo = ?", (self._key(repo),))
        else:
            await self._execute("INSERT OR REPLACE INTO pull_policies VALUES (?, ?, ?)", (self._key(repo), policy, now))

    async def pull_policy(self, repo: str) -> str | None:
        rows = await self._execute("SELECT policy FROM pull_policies WHERE repo = ?", (self._key(repo),))
        return str(rows[0][0]) if rows else None

    async def put_manifest(self, manifest: StoredManifest, now: float) -> None:
        await self._execute(
            "INSERT OR IGNORE INTO manifests VALUES (?, ?, ?, ?)",
            (str(manifest.digest), manifest.media_type, manifest.content, now),
        )

    async def get_manifest(self, digest: Digest) -> StoredManifest | None:
        rows = await self._execute("SELECT media_type, content FROM manifests WHERE digest = ?", (str(digest),))
        if not rows:
            return None
        return StoredManifest(digest, str(rows[0][0]), bytes(rows[0][1]))

    async def set_tag(self, repo: str, tag: str, entry: TagEntry) -> None:
        await self._execute(
            "INSERT OR REPLACE INTO tags VALUES (?, ?, ?, ?, ?)",
            (self._key(repo), tag, str(entry.digest), entry.media_type, entry.checked_at),
        )

    async def get_tag(self, repo: str, tag: str) -> TagEntry | None:
        rows = await self._execute(
            "SELECT digest, media_type, checked_at FROM tags WHERE repo = ? AND tag = ?", (self._key(repo), tag)
        )
        if not rows:
            return None
        return TagEntry(Digest.parse(rows[0][0]), str(rows[0][1]), float(rows[0][2]))

    async def drop_tag(self, repo: str, tag: str) -> None:
        await self._execute("DELETE FROM tags WHERE repo = ? AND tag = ?", (self._key(repo), tag))

    async def prune(self, limits: IndexLimits) -> int:
        """Drop the oldest rows beyond ``limits``; the number of rows dropped."""

        def prune(db: sqlite3.Connection) -> int:
            dropped = 0
            for count_sql, delete_sql, limit in (
                (*_PRUNE_LINKS, limits.links),
                (*_PRUNE_MANIFESTS, limits.manifests),
                (*_PRUNE_TAGS, limits.tags),
                (*_PRUNE_POLICIES, limits.tags),
            ):
                excess = int(db.execute(count_sql).fetchone()[0]) - limit
                if excess > 0:
                    dropped += db.execute(delete_sql, (excess,)).rowcount
            return dropped

        return await self._run(prune)

    def close(self) -> None:
        with self._lock:
            self._db.close()


async def open_edge_index(path: Path) -> SqliteEdgeIndex:
    """Open (creating) the index at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return await trio.to_thread.run_sync(SqliteEdgeIndex, path)
