"""SqliteIamStore: namespaces, principals, teams, credentials, roles, bindings, signing keys and audit
records, in the shared SQLite database. Every IAM write bumps ``meta.iam_generation`` in the same
transaction, so caches (in this process or another) can tell that something changed."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from registry.audit import chain
from registry.audit.chain import AuditEntry
from registry.iam.model import (
    ADMIN_ROLE,
    ALL_NAMESPACES,
    BUILTIN_ROLES,
    Binding,
    Credential,
    Identity,
    Namespace,
    Principal,
    Role,
)
from registry.storage.sqlite_db import SqliteDatabase

T = TypeVar("T")


class IamError(ValueError):
    """An IAM request that cannot be carried out; ``kind`` is "not_found", "conflict" or "invalid"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _not_found(what: str) -> IamError:
    return IamError("not_found", f"{what} does not exist")


def _bump(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES('iam_generation', '1') "
        "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
    )


def _generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'iam_generation'").fetchone()
    return int(row[0]) if row else 0


def _credential(row: tuple[Any, ...]) -> Credential:
    return Credential(row[0], row[1], row[2], row[3] or "", row[4], row[5], row[6], row[7])


_CRED_COLS = "username, kind, name, description, created, expires, last_used, revoked"


def load_identity(conn: sqlite3.Connection, kind: str, name: str, credential: str | None) -> Identity:
    """Teams and per-namespace permissions of a principal (direct bindings and through its teams)."""
    teams = tuple(
        r[0]
        for r in conn.execute("SELECT team FROM team_members WHERE kind = ? AND name = ? ORDER BY team", (kind, name))
    )
    subjects = [(kind, name)] + [("team", t) for t in teams]
    grants: dict[str, set[str]] = {}
    admin = False
    for subject_kind, subject_name in subjects:
        rows = conn.execute(
            "SELECT b.namespace, b.role, r.permissions FROM bindings b JOIN roles r ON r.name = b.role "
            "WHERE b.subject_kind = ? AND b.subject_name = ?",
            (subject_kind, subject_name),
        ).fetchall()
        for namespace, role, permissions in rows:
            grants.setdefault(namespace, set()).update(p for p in permissions.split(",") if p)
            admin = admin or (role == ADMIN_ROLE and namespace == ALL_NAMESPACES)
    return Identity(kind, name, credential, teams, {k: frozenset(v) for k, v in grants.items()}, admin)


class SqliteIamStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run(conn: sqlite3.Connection) -> T:
            result = fn(conn)
            _bump(conn)
            return result

        return await self.db.write(run, notify=False)

    async def generation(self) -> int:
        return await self.db.read(_generation)

    async def ensure_builtin_roles(self) -> None:
        def w(conn: sqlite3.Connection) -> None:
            for name, (perms, description) in BUILTIN_ROLES.items():
                conn.execute(
                    "INSERT INTO roles(name, permissions, description, builtin) VALUES (?, ?, ?, 1) "
                    "ON CONFLICT(name) DO UPDATE SET permissions = excluded.permissions, builtin = 1",
                    (name, ",".join(sorted(perms)), description),
                )

        await self._write(w)

    # -- namespaces -----------------------------------------------------------------------------------
    async def create_namespace(self, ns: Namespace) -> None:
        def w(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO namespaces(name, description, public, created) VALUES (?, ?, ?, ?)",
                    (ns.name, ns.description, int(ns.public), ns.created or time.time()),
                )
            except sqlite3.IntegrityError:
                raise IamError("conflict", f"namespace {ns.name} already exists") from None

        await self._write(w)

    async def update_namespace(self, name: str, description: str | None, public: bool | None) -> Namespace:
        def w(conn: sqlite3.Connection) -> Namespace:
            row = conn.execute("SELECT name, description, public, created FROM namespaces WHERE name = ?", (name,))
            found = row.fetchone()
            if found is None:
                raise _not_found(f"namespace {name}")
            ns = Namespace(
                name,
                found[1] if description is None else description,
                bool(found[2]) if public is None else public,
                found[3],
            )
            conn.execute(
                "UPDATE namespaces SET description = ?, public = ? WHERE name = ?",
                (ns.description, int(ns.public), name),
            )
            return ns

        return await self._write(w)

    async def delete_namespace(self, name: str) -> None:
        def w(conn: sqlite3.Connection) -> None:
            if not conn.execute("DELETE FROM namespaces WHERE name = ?", (name,)).rowcount:
                raise _not_found(f"namespace {name}")
            conn.execute("DELETE FROM bindings WHERE namespace = ?", (name,))

        await self._write(w)

    async def list_namespaces(self) -> list[Namespace]:
        def q(conn: sqlite3.Connection) -> list[Namespace]:
            rows = conn.execute("SELECT name, description, public, created FROM namespaces ORDER BY name")
            return [Namespace(r[0], r[1] or "", bool(r[2]), r[3]) for r in rows]

        return await self.db.read(q)

    async def namespace_flags(self) -> dict[str, bool]:
        """Every namespace → its public flag (for policy decisions)."""

        def q(conn: sqlite3.Connection) -> dict[str, bool]:
            return {r[0]: bool(r[1]) for r in conn.execute("SELECT name, public FROM namespaces")}

        return await self.db.read(q)

    # -- principals and teams -------------------------------------------------------------------------
    async def create_principal(self, principal: Principal) -> None:
        def w(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO principals(kind, name, description, created, disabled) VALUES (?, ?, ?, ?, 0)",
                    (principal.kind, principal.name, principal.description, principal.created or time.time()),
                )
            except sqlite3.IntegrityError:
                raise IamError("conflict", f"{principal.kind} {principal.name} already exists") from None

        await self._write(w)

    async def list_principals(self, kind: str) -> list[Principal]:
        def q(conn: sqlite3.Connection) -> list[Principal]:
            rows = conn.execute(
                "SELECT kind, name, description, created, disabled FROM principals WHERE kind = ? ORDER BY name",
                (kind,),
            )
            return [Principal(r[0], r[1], r[2] or "", r[3], bool(r[4])) for r in rows]

        return await self.db.read(q)

    async def delete_principal(self, kind: str, name: str) -> None:
        def w(conn: sqlite3.Connection) -> None:
            if not conn.execute("DELETE FROM principals WHERE kind = ? AND name = ?", (kind, name)).rowcount:
                raise _not_found(f"{kind} {name}")
            conn.execute(
                "UPDATE credentials SET revoked = ? WHERE kind = ? AND name = ? AND revoked IS NULL",
                (time.time(), kind, name),
            )
            conn.execute("DELETE FROM team_members WHERE kind = ? AND name = ?", (kind, name))
            conn.execute("DELETE FROM bindings WHERE subject_kind = ? AND subject_name = ?", (kind, name))
            if kind == "service-account":
                conn.execute("DELETE FROM k8s_identities WHERE service_account = ?", (name,))

        await self._write(w)

    async def create_team(self, name: str, description: str) -> None:
        def w(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO teams(name, description, created) VALUES (?, ?, ?)", (name, description, time.time())
                )
            except sqlite3.IntegrityError:
                raise IamError("conflict", f"team {name} already exists") from None

        await self._write(w)

    async def delete_team(self, name: str) -> None:
        def w(conn: sqlite3.Connection) -> None:
            if not conn.execute("DELETE FROM teams WHERE name = ?", (name,)).rowcount:
                raise _not_found(f"team {name}")
            conn.execute("DELETE FROM team_members WHERE team = ?", (name,))
            conn.execute("DELETE FROM bindings WHERE subject_kind = 'team' AND subject_name = ?", (name,))

        await self._write(w)

    async def set_membership(self, team: str, kind: str, name: str, member: bool) -> None:
        def w(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM teams WHERE name = ?", (team,)).fetchone() is None:
                raise _not_found(f"team {team}")
            if conn.execute("SELECT 1 FROM principals WHERE kind = ? AND name = ?", (kind, name)).fetchone() is None:
                raise _not_found(f"{kind} {name}")
            if member:
                conn.execute(
                    "INSERT OR IGNORE INTO team_members(team, kind, name) VALUES (?, ?, ?)", (team, kind, name)
                )
            else:
                conn.execute("DELETE FROM team_members WHERE team = ? AND kind = ? AND name = ?", (team, kind, name))

        await self._write(w)

    async def list_teams(self) -> list[tuple[str, str, list[str]]]:
        def q(conn: sqlite3.Connection) -> list[tuple[str, str, list[str]]]:
            teams = conn.execute("SELECT name, description FROM teams ORDER BY name").fetchall()
            return [
                (
                    name,
                    description or "",
                    [
                        f"{k}:{n}"
                        for k, n in conn.execute(
                            "SELECT kind, name FROM team_members WHERE team = ? ORDER BY kind, name", (name,)
                        )
                    ],
                )
                for name, description in teams
            ]

        return await self.db.read(q)

    # -- credentials ----------------------------------------------------------------------------------
    async def add_credential(self, credential: Credential, secret_hash: str) -> None:
        def w(conn: sqlite3.Connection) -> None:
            exists = conn.execute(
                "SELECT 1 FROM principals WHERE kind = ? AND name = ?",
                (credential.principal_kind, credential.principal_name),
            ).fetchone()
            if exists is None:
                raise _not_found(f"{credential.principal_kind} {credential.principal_name}")
            conn.execute(
                f"INSERT INTO credentials({_CRED_COLS}, secret_hash) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, ?)",
                (
                    credential.username,
                    credential.principal_kind,
                    credential.principal_name,
                    credential.description,
                    credential.created,
                    credential.expires,
                    secret_hash,
                ),
            )

        await self._write(w)

    async def list_credentials(self, kind: str, name: str) -> list[Credential]:
        def q(conn: sqlite3.Connection) -> list[Credential]:
            rows = conn.execute(
                f"SELECT {_CRED_COLS} FROM credentials WHERE kind = ? AND name = ? ORDER BY created", (kind, name)
            )
            return [_credential(r) for r in rows]

        return await self.db.read(q)

    async def revoke_credential(self, username: str, now: float) -> Credential:
        def w(conn: sqlite3.Connection) -> Credential:
            conn.execute("UPDATE credentials SET revoked = ? WHERE username = ? AND revoked IS NULL", (now, username))
            row = conn.execute(f"SELECT {_CRED_COLS} FROM credentials WHERE username = ?", (username,)).fetchone()
            if row is None:
                raise _not_found(f"credential {username}")
            return _credential(row)

        return await self._write(w)

    async def credential_identity(self, username: str) -> tuple[int, Credential, str, Identity] | None:
        """In one read: the IAM generation, the credential, its secret hash and its principal's identity."""

        def q(conn: sqlite3.Connection) -> tuple[int, Credential, str, Identity] | None:
            row = conn.execute(
                f"SELECT {_CRED_COLS}, secret_hash FROM credentials WHERE username = ?", (username,)
            ).fetchone()
            if row is None:
                return None
            cred = _credential(row)
            disabled = conn.execute(
                "SELECT disabled FROM principals WHERE kind = ? AND name = ?",
                (cred.principal_kind, cred.principal_name),
            ).fetchone()
            if disabled is None or disabled[0]:
                return None
            identity = load_identity(conn, cred.principal_kind, cred.principal_name, cred.username)
            return _generation(conn), cred, row[8], identity

        return await self.db.read(q)

    async def identity(self, kind: str, name: str, credential: str | None) -> Identity | None:
        def q(conn: sqlite3.Connection) -> Identity | None:
            row = conn.execute("SELECT disabled FROM principals WHERE kind = ? AND name = ?", (kind, name)).fetchone()
            if row is None or row[0]:
                return None
            if credential is not None:
                cred = conn.execute("SELECT revoked, expires FROM credentials WHERE username = ?", (credential,))
                found = cred.fetchone()
                if found is None or found[0] is not None or (found[1] is not None and found[1] <= time.time()):
                    return None
            return load_identity(conn, kind, name, credential)

        return await self.db.read(q)

    async def touch_credential(self, username: str, now: float) -> None:
        """Record use (at most once a minute per credential, so auth does not write on every request)."""

        def w(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE credentials SET last_used = ? WHERE username = ? AND (last_used IS NULL OR last_used < ?)",
                (now, username, now - 60),
            )

        await self.db.write(w, notify=False)

    # -- roles and bindings ---------------------------------------------------------------------------
    async def create_role(self, role: Role) -> None:
        def w(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO roles(name, permissions, description, builtin) VALUES (?, ?, ?, 0)",
                    (role.name, ",".join(sorted(role.permissions)), role.description),
                )
            except sqlite3.IntegrityError:
                raise IamError("conflict", f"role {role.name} already exists") from None

        await self._write(w)

    async def delete_role(self, name: str) -> None:
        def w(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT builtin FROM roles WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise _not_found(f"role {name}")
            if row[0]:
                raise IamError("invalid", f"role {name} is built in and cannot be deleted")
            conn.execute("DELETE FROM roles WHERE name = ?", (name,))
            conn.execute("DELETE FROM bindings WHERE role = ?", (name,))

        await self._write(w)

    async def list_roles(self) -> list[Role]:
        def q(conn: sqlite3.Connection) -> list[Role]:
            rows = conn.execute("SELECT name, permissions, description, builtin FROM roles ORDER BY name")
            return [Role(r[0], frozenset(p for p in r[1].split(",") if p), r[2] or "", bool(r[3])) for r in rows]

        return await self.db.read(q)

    async def set_binding(self, binding: Binding, present: bool) -> None:
        def w(conn: sqlite3.Connection) -> None:
            if present:
                if conn.execute("SELECT 1 FROM roles WHERE name = ?", (binding.role,)).fetchone() is None:
                    raise _not_found(f"role {binding.role}")
                if (
                    binding.namespace != ALL_NAMESPACES
                    and conn.execute("SELECT 1 FROM namespaces WHERE name = ?", (binding.namespace,)).fetchone() is None
                ):
                    raise _not_found(f"namespace {binding.namespace}")
                if binding.subject_kind == "team":
                    subject = conn.execute("SELECT 1 FROM teams WHERE name = ?", (binding.subject_name,))
                else:
                    subject = conn.execute(
                        "SELECT 1 FROM principals WHERE kind = ? AND name = ?",
                        (binding.subject_kind, binding.subject_name),
                    )
                if subject.fetchone() is None:
                    raise _not_found(f"{binding.subject_kind} {binding.subject_name}")
                conn.execute(
                    "INSERT OR IGNORE INTO bindings(role, namespace, subject_kind, subject_name) VALUES (?, ?, ?, ?)",
                    (binding.role, binding.namespace, binding.subject_kind, binding.subject_name),
                )
            elif not conn.execute(
                "DELETE FROM bindings WHERE role = ? AND namespace = ? AND subject_kind = ? AND subject_name = ?",
                (binding.role, binding.namespace, binding.subject_kind, binding.subject_name),
            ).rowcount:
                raise _not_found("binding")

        await self._write(w)

    async def list_bindings(self) -> list[Binding]:
        def q(conn: sqlite3.Connection) -> list[Binding]:
            rows = conn.execute(
                "SELECT role, namespace, subject_kind, subject_name FROM bindings ORDER BY namespace, role"
            )
            return [Binding(*r) for r in rows]

        return await self.db.read(q)

    # -- kubernetes identities ------------------------------------------------------------------------
    async def set_k8s_identity(self, issuer: str, subject: str, service_account: str | None) -> None:
        def w(conn: sqlite3.Connection) -> None:
            if service_account is None:
                conn.execute("DELETE FROM k8s_identities WHERE issuer = ? AND subject = ?", (issuer, subject))
                return
            if (
                conn.execute(
                    "SELECT 1 FROM principals WHERE kind = 'service-account' AND name = ?", (service_account,)
                ).fetchone()
                is None
            ):
                raise _not_found(f"service-account {service_account}")
            conn.execute(
                "INSERT INTO k8s_identities(issuer, subject, service_account) VALUES (?, ?, ?) "
                "ON CONFLICT(issuer, subject) DO UPDATE SET service_account = excluded.service_account",
                (issuer, subject, service_account),
            )

        await self._write(w)

    async def k8s_service_account(self, issuer: str, subject: str) -> str | None:
        def q(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT service_account FROM k8s_identities WHERE issuer = ? AND subject = ?", (issuer, subject)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self.db.read(q)

    # -- signing keys ---------------------------------------------------------------------------------
    async def load_keys(self) -> list[tuple[str, bytes, float, float | None]]:
        def q(conn: sqlite3.Connection) -> list[tuple[str, bytes, float, float | None]]:
            rows = conn.execute("SELECT kid, private_pem, created, retired FROM signing_keys ORDER BY created")
            return [(r[0], bytes(r[1]), r[2], r[3]) for r in rows]

        return await self.db.read(q)

    async def save_keys(self, keys: list[tuple[str, bytes, float, float | None]], delete: list[str]) -> None:
        def w(conn: sqlite3.Connection) -> None:
            for kid, pem, created, retired in keys:
                conn.execute(
                    "INSERT INTO signing_keys(kid, private_pem, created, retired) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(kid) DO UPDATE SET retired = excluded.retired",
                    (kid, pem, created, retired),
                )
            for kid in delete:
                conn.execute("DELETE FROM signing_keys WHERE kid = ?", (kid,))

        await self._write(w)

    # -- audit ----------------------------------------------------------------------------------------
    async def audit(
        self, event: str, outcome: str, actor: str, credential: str | None, source: str, detail: dict[str, Any]
    ) -> None:
        """Append one audit record (never secrets or tokens)."""

        await self.append_audit(AuditEntry(event, outcome, actor, credential, source, detail))

    async def append_audit(self, entry: AuditEntry) -> None:
        """Append one record to the hash-chained audit log (``registry.audit.chain``)."""
        await self.db.write(lambda conn: chain.append(conn, entry), notify=False)

    async def audit_records(self, limit: int = 1000) -> list[dict[str, Any]]:
        def q(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT id, at, event, outcome, actor, credential, source, detail FROM audit ORDER BY id DESC LIMIT ?",
                (limit,),
            )
            keys = ("id", "at", "event", "outcome", "actor", "credential", "source", "detail")
            return [dict(zip(keys, r, strict=True)) | {"detail": json.loads(r[7] or "{}")} for r in rows]

        return await self.db.read(q)
