"""IamService: the one service layer behind the management API, the ``registry admin`` CLI and
authentication. Validation and audit happen here; storage is ``SqliteIamStore``."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.iam.k8s import K8sTokenVerifier, looks_like_jwt
from registry.iam.model import (
    ADMIN_ROLE,
    ALL_NAMESPACES,
    PRINCIPAL_KINDS,
    SUBJECT_KINDS,
    Binding,
    Credential,
    Identity,
    Namespace,
    Principal,
    Role,
    parse_permissions,
)
from registry.iam.ratelimit import FailureLimiter
from registry.iam.secrets import SecretHasher, VerifiedCache, generate_secret, generate_username
from registry.iam.store import IamError, SqliteIamStore

_NAMESPACE = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_PRINCIPAL = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
ADMIN_FILE = "admin-credential.json"


class AuthFailure(Exception):
    """Authentication failed. ``retry_after`` is set when the caller is rate limited."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class IssuedCredential:
    """A new credential with its secret — shown once, never stored in clear."""

    credential: Credential
    password: str

    def as_json(self) -> dict[str, Any]:
        return {
            "username": self.credential.username,
            "password": self.password,
            "principal": f"{self.credential.principal_kind}:{self.credential.principal_name}",
            "expires": self.credential.expires,
            "description": self.credential.description,
        }


def _check_name(kind: str, name: str, pattern: re.Pattern[str]) -> str:
    if not pattern.fullmatch(name) or len(name) > 64:
        raise IamError("invalid", f"invalid {kind} name {name[:80]!r}")
    return name


class IamService:
    def __init__(
        self,
        store: SqliteIamStore,
        hasher: SecretHasher,
        cache: VerifiedCache,
        limiter: FailureLimiter,
        clock: Callable[[], float] = time.time,
        k8s: K8sTokenVerifier | None = None,
        source_limiter: FailureLimiter | None = None,
    ) -> None:
        self.k8s = k8s
        # Per source address: more lenient than per credential, so that many users behind one NAT are not
        # locked out by one of them (a guessing attack on one credential still hits the credential limit).
        self.source_limiter = limiter if source_limiter is None else source_limiter
        self.store = store
        self.hasher = hasher
        self.cache = cache
        self.limiter = limiter
        self.clock = clock

    async def _audit(self, event: str, actor: str, detail: dict[str, Any], outcome: str = "success") -> None:
        await self.store.audit(event, outcome, actor, None, "", detail)

    # -- bootstrap ------------------------------------------------------------------------------------
    async def bootstrap(self, data_dir: Path, admin_file: str) -> Path | None:
        """Built-in roles always; on first start (no principals yet) an admin user bound to the admin role
        on every namespace, with a credential read from ``admin_file`` or generated and written to
        ``<data>/admin-credential.json`` (mode 0600). Returns the path of a newly written file."""
        await self.store.ensure_builtin_roles()
        if await self.store.list_principals("user") or await self.store.list_principals("service-account"):
            return None
        await self.store.create_principal(Principal("user", "admin", "registry administrator", self.clock()))
        await self.store.set_binding(Binding(ADMIN_ROLE, ALL_NAMESPACES, "user", "admin"), True)
        if admin_file:
            doc = json.loads(Path(admin_file).read_text())
            username, password = str(doc["username"]), str(doc["password"])
            await self.store.add_credential(
                Credential(username, "user", "admin", "bootstrap (from file)", self.clock()), self.hasher.hash(password)
            )
            await self._audit("iam.bootstrap", "system", {"admin": "user:admin", "source": "file"})
            return None
        issued = await self.create_credential("user", "admin", "bootstrap", None, actor="system")
        path = data_dir / ADMIN_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"username": issued.credential.username, "password": issued.password}, fh)
            fh.write("\n")
        await self._audit("iam.bootstrap", "system", {"admin": "user:admin", "source": "generated"})
        return path

    # -- namespaces -----------------------------------------------------------------------------------
    async def create_namespace(
        self, name: str, description: str = "", public: bool = False, actor: str = ""
    ) -> Namespace:
        ns = Namespace(_check_name("namespace", name, _NAMESPACE), description, public, self.clock())
        await self.store.create_namespace(ns)
        await self._audit("namespace.create", actor, {"namespace": name, "public": public})
        return ns

    async def update_namespace(
        self, name: str, description: str | None, public: bool | None, actor: str = ""
    ) -> Namespace:
        ns = await self.store.update_namespace(name, description, public)
        await self._audit("namespace.update", actor, {"namespace": name, "public": ns.public})
        return ns

    async def delete_namespace(self, name: str, actor: str = "") -> None:
        await self.store.delete_namespace(name)
        await self._audit("namespace.delete", actor, {"namespace": name})

    # -- principals -----------------------------------------------------------------------------------
    async def create_principal(self, kind: str, name: str, description: str = "", actor: str = "") -> Principal:
        if kind not in PRINCIPAL_KINDS:
            raise IamError("invalid", f"principal kind must be one of {', '.join(PRINCIPAL_KINDS)}")
        principal = Principal(kind, _check_name(kind, name, _PRINCIPAL), description, self.clock())
        await self.store.create_principal(principal)
        await self._audit(f"{kind}.create", actor, {"name": name})
        return principal

    async def delete_principal(self, kind: str, name: str, actor: str = "") -> None:
        await self.store.delete_principal(kind, name)
        self.cache.clear()
        await self._audit(f"{kind}.delete", actor, {"name": name})

    async def create_team(self, name: str, description: str = "", actor: str = "") -> None:
        await self.store.create_team(_check_name("team", name, _PRINCIPAL), description)
        await self._audit("team.create", actor, {"team": name})

    async def delete_team(self, name: str, actor: str = "") -> None:
        await self.store.delete_team(name)
        await self._audit("team.delete", actor, {"team": name})

    async def set_membership(self, team: str, kind: str, name: str, member: bool, actor: str = "") -> None:
        await self.store.set_membership(team, kind, name, member)
        await self._audit(
            "team.member." + ("add" if member else "remove"), actor, {"team": team, "member": f"{kind}:{name}"}
        )

    # -- credentials ----------------------------------------------------------------------------------
    async def create_credential(
        self, kind: str, name: str, description: str = "", expires_in: float | None = None, actor: str = ""
    ) -> IssuedCredential:
        """A new credential (username + secret) for a user or service account; the secret is returned once."""
        now = self.clock()
        password = generate_secret()
        credential = Credential(
            generate_username(name), kind, name, description, now, None if expires_in is None else now + expires_in
        )
        await self.store.add_credential(credential, self.hasher.hash(password))
        await self._audit(
            "credential.create", actor, {"credential": credential.username, "principal": f"{kind}:{name}"}
        )
        return IssuedCredential(credential, password)

    async def revoke_credential(self, username: str, actor: str = "") -> Credential:
        credential = await self.store.revoke_credential(username, self.clock())
        self.cache.invalidate(username)
        await self._audit("credential.revoke", actor, {"credential": username})
        return credential

    # -- roles and bindings ---------------------------------------------------------------------------
    async def create_role(self, name: str, permissions: str, description: str = "", actor: str = "") -> Role:
        try:
            perms = parse_permissions(permissions)
        except ValueError as exc:
            raise IamError("invalid", str(exc)) from None
        role = Role(_check_name("role", name, _PRINCIPAL), perms, description)
        await self.store.create_role(role)
        await self._audit("role.create", actor, {"role": name, "permissions": sorted(perms)})
        return role

    async def delete_role(self, name: str, actor: str = "") -> None:
        await self.store.delete_role(name)
        await self._audit("role.delete", actor, {"role": name})

    async def set_binding(self, binding: Binding, present: bool, actor: str = "") -> None:
        if binding.subject_kind not in SUBJECT_KINDS:
            raise IamError("invalid", f"subject kind must be one of {', '.join(SUBJECT_KINDS)}")
        await self.store.set_binding(binding, present)
        event = "role.grant" if present else "role.revoke"
        await self._audit(
            event,
            actor,
            {
                "role": binding.role,
                "namespace": binding.namespace,
                "subject": f"{binding.subject_kind}:{binding.subject_name}",
            },
        )

    async def _k8s_identity(self, token: str, now: float) -> Identity | None:
        assert self.k8s is not None
        subject = await self.k8s.verify(token, now)
        if subject is None:
            return None
        account = await self.store.k8s_service_account(self.k8s.issuer, subject)
        if account is None:
            return None
        return await self.store.identity("service-account", account, None)

    def _failed(self, username: str, source: str, now: float) -> None:
        self.limiter.record_failure(f"cred:{username}", now)
        self.source_limiter.record_failure(source, now)

    # -- authentication -------------------------------------------------------------------------------
    async def authenticate(self, username: str, password: str, source: str) -> Identity:
        """Verify a username/secret pair.

        Raises:
            AuthFailure: wrong, unknown, expired or revoked credential, or rate limited (``retry_after``).
        """
        now = self.clock()
        waits = [
            w
            for w in (self.limiter.retry_after(f"cred:{username}", now), self.source_limiter.retry_after(source, now))
            if w is not None
        ]
        if waits:
            await self.store.audit("auth.basic", "rate_limited", "", username[:100], source, {})
            raise AuthFailure("too many failed logins", max(waits))
        if self.k8s is not None and looks_like_jwt(password):
            identity = await self._k8s_identity(password, now)
            if identity is not None:
                await self.store.audit("auth.k8s", "success", identity.subject, None, source, {})
                return identity
            self._failed(username, source, now)
            await self.store.audit("auth.k8s", "failure", "", None, source, {"reason": "token not accepted"})
            raise AuthFailure("kubernetes token not accepted")
        found = await self.store.credential_identity(username)
        if found is not None:
            generation, credential, secret_hash, identity = found
            cached = credential.usable(now) and self.cache.get(username, password, now, generation)
            if cached or (credential.usable(now) and await self.hasher.verify(secret_hash, password)):
                self.cache.put(username, password, now, generation)
                self.limiter.record_success(f"cred:{username}")
                if credential.last_used is None or credential.last_used < now - 60:
                    await self.store.touch_credential(username, now)  # a write: at most once a minute
                if not cached:  # a cache hit repeats a success already recorded within basic_cache_ttl
                    await self.store.audit("auth.basic", "success", identity.subject, username, source, {})
                return identity
            reason = (
                "credential revoked"
                if credential.revoked
                else ("credential expired" if not credential.usable(now) else "wrong secret")
            )
        else:
            reason = "unknown credential"
        self._failed(username, source, now)
        await self.store.audit("auth.basic", "failure", "", username[:100], source, {"reason": reason})
        raise AuthFailure(reason)
