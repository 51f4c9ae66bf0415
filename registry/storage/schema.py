"""The SQLite schema (created with sqlite-utils) and connection setup.

Tables:
  repositories(name)                       a repository exists once something was pushed to it
  blobs(digest, size)                      one row per stored blob, shared by every repository
  repo_blobs(repo, digest)                 membership: a blob is served only where it is linked
  manifests(digest, media_type, content…)  manifest bytes exactly as pushed, shared like blobs
  manifest_refs(digest, ref, kind)         what a manifest points at (blob, child, external)
  repo_manifests(repo, digest)             manifest membership
  tags(repo, tag, digest)
  referrers(repo, subject, digest)         manifests whose subject is ``subject``
  uploads(id, repo, size)                  resumable upload sessions (data under uploads/<id>)
  outbox(id, kind, repo, digest, tag)      domain events, written in the changing transaction
  outbox_cursors(subscriber, last_id)
IAM (registry.iam.store):
  namespaces(name, description, public)
  principals(kind, name)                   users and service accounts
  teams(name), team_members(team, kind, name)
  credentials(username, kind, name, secret_hash, expires, revoked, last_used)
  roles(name, permissions), bindings(role, namespace, subject_kind, subject_name)
  k8s_identities(issuer, subject, service_account)
  signing_keys(kid, private_pem, created, retired)
  audit(id, at, event, outcome, actor, credential, source, detail,   append-only, hash-chained
        resource, request_id, user_agent, prev, hash)                  (registry.audit.chain)
GC and usage (registry.gc):
  blobs.last_ref                           last upload/mount/HEAD/GET of the blob (GC grace clock)
  gc_tombstones(digest, at)                blob files being deleted: uploads of these digests fail
  pulls(repo, digest, at)                  last pull time per manifest (retention "pulled within")
  meta('iam_generation')                   bumped by every IAM change; caches compare it
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import sqlite_utils

SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 10_000


def connect(path: Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit ``BEGIN IMMEDIATE``), WAL, and
    ``synchronous=FULL`` so that a committed transaction survives power loss (the WAL is fsynced at
    every commit)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000)
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


def _create_iam(db: sqlite_utils.Database) -> None:
    t = db.table
    t("namespaces").create(
        {"name": str, "description": str, "public": int, "created": float}, pk="name", if_not_exists=True
    )
    t("principals").create(
        {"kind": str, "name": str, "description": str, "created": float, "disabled": int},
        pk=("kind", "name"),
        if_not_exists=True,
    )
    t("teams").create({"name": str, "description": str, "created": float}, pk="name", if_not_exists=True)
    t("team_members").create({"team": str, "kind": str, "name": str}, pk=("team", "kind", "name"), if_not_exists=True)
    t("credentials").create(
        {
            "username": str,
            "kind": str,
            "name": str,
            "secret_hash": str,
            "description": str,
            "created": float,
            "expires": float,
            "last_used": float,
            "revoked": float,
        },
        pk="username",
        if_not_exists=True,
    )
    t("roles").create(
        {"name": str, "permissions": str, "description": str, "builtin": int}, pk="name", if_not_exists=True
    )
    t("bindings").create(
        {"role": str, "namespace": str, "subject_kind": str, "subject_name": str},
        pk=("role", "namespace", "subject_kind", "subject_name"),
        if_not_exists=True,
    )
    t("k8s_identities").create(
        {"issuer": str, "subject": str, "service_account": str}, pk=("issuer", "subject"), if_not_exists=True
    )
    t("signing_keys").create(
        {"kid": str, "private_pem": bytes, "created": float, "retired": float}, pk="kid", if_not_exists=True
    )
    t("audit").create(
        {
            "id": int,
            "at": float,
            "event": str,
            "outcome": str,
            "actor": str,
            "credential": str,
            "source": str,
            "detail": str,
        },
        pk="id",
        if_not_exists=True,
    )
    t("credentials").create_index(["kind", "name"], if_not_exists=True)
    t("bindings").create_index(["subject_kind", "subject_name"], if_not_exists=True)


def _add_columns(db: sqlite_utils.Database, table: str, columns: dict[str, type]) -> None:
    existing = {c.name for c in db.table(table).columns}
    for name, kind in columns.items():
        if name not in existing:
            db.table(table).add_column(name, kind)


def _create_gc(db: sqlite_utils.Database) -> None:
    """Tables and columns of online GC, pull times and the audit hash chain (added to older databases)."""
    _add_columns(db, "blobs", {"last_ref": float})
    _add_columns(db, "audit", {"resource": str, "request_id": str, "user_agent": str, "prev": str, "hash": str})
    db.table("gc_tombstones").create({"digest": str, "at": float}, pk="digest", if_not_exists=True)
    db.table("pulls").create({"repo": str, "digest": str, "at": float}, pk=("repo", "digest"), if_not_exists=True)
    db.table("manifest_refs").create_index(["digest"], if_not_exists=True)


def create(path: Path) -> None:
    """Create the tables and indexes if they are missing (idempotent; safe beside a running server).

    The database holds password hashes and token signing keys: it and its WAL files are made readable
    by the owner only."""
    conn = connect(path)
    for suffix in ("", "-wal", "-shm"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            os.chmod(candidate, 0o600)
    try:
        conn.execute("BEGIN IMMEDIATE")
        db = sqlite_utils.Database(conn)
        db.table("meta").create({"key": str, "value": str}, pk="key", if_not_exists=True)
        db.table("repositories").create({"name": str, "created": float}, pk="name", if_not_exists=True)
        db.table("blobs").create({"digest": str, "size": int, "created": float}, pk="digest", if_not_exists=True)
        db.table("repo_blobs").create(
            {"repo": str, "digest": str, "created": float}, pk=("repo", "digest"), if_not_exists=True
        )
        db.table("manifests").create(
            {
                "digest": str,
                "media_type": str,
                "size": int,
                "content": bytes,
                "artifact_type": str,
                "subject": str,
                "annotations": str,
                "created": float,
            },
            pk="digest",
            if_not_exists=True,
        )
        db.table("manifest_refs").create(
            {"digest": str, "ref": str, "kind": str}, pk=("digest", "ref", "kind"), if_not_exists=True
        )
        db.table("repo_manifests").create(
            {"repo": str, "digest": str, "pushed": float}, pk=("repo", "digest"), if_not_exists=True
        )
        db.table("tags").create(
            {"repo": str, "tag": str, "digest": str, "updated": float},
            pk=("repo", "tag"),
            if_not_exists=True,
        )
        db.table("referrers").create(
            {"repo": str, "subject": str, "digest": str},
            pk=("repo", "subject", "digest"),
            if_not_exists=True,
        )
        db.table("uploads").create(
            {"id": str, "repo": str, "size": int, "created": float, "updated": float},
            pk="id",
            if_not_exists=True,
        )
        db.table("outbox").create(
            {
                "id": int,
                "at": float,
                "kind": str,
                "repo": str,
                "digest": str,
                "tag": str,
                "data": str,
            },
            pk="id",
            if_not_exists=True,
        )
        db.table("outbox_cursors").create({"subscriber": str, "last_id": int}, pk="subscriber", if_not_exists=True)
        _create_iam(db)
        _create_gc(db)
        db.table("tags").create_index(["repo", "digest"], if_not_exists=True)
        db.table("manifest_refs").create_index(["ref"], if_not_exists=True)
        db.table("repo_blobs").create_index(["digest"], if_not_exists=True)
        db.table("repo_manifests").create_index(["digest"], if_not_exists=True)
        db.table("uploads").create_index(["updated"], if_not_exists=True)
        conn.execute(
            "INSERT INTO meta(key, value) VALUES('schema_version', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )
        conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES('iam_generation', '0')")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
