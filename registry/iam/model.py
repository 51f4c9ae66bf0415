"""IAM values: permissions, roles, principals, bindings and the authenticated identity."""

from __future__ import annotations

from dataclasses import dataclass, field

PULL, PUSH, LIST, DELETE = "pull", "push", "list", "delete"
PERMISSIONS = (PULL, PUSH, LIST, DELETE)
ADMIN_ROLE = "admin"
ALL_NAMESPACES = "*"
PRINCIPAL_KINDS = ("user", "service-account")
SUBJECT_KINDS = ("user", "service-account", "team")

# name → (permissions, description). "admin" is registry-wide and also manages IAM.
BUILTIN_ROLES: dict[str, tuple[frozenset[str], str]] = {
    "puller": (frozenset({PULL}), "pull images"),
    "reader": (frozenset({PULL, LIST}), "pull images and list repositories and tags"),
    "pusher": (frozenset({PULL, PUSH}), "pull and push images"),
    "writer": (frozenset({PULL, PUSH, LIST}), "pull, push, list"),
    "maintainer": (frozenset(PERMISSIONS), "pull, push, list and delete"),
    ADMIN_ROLE: (frozenset(PERMISSIONS), "everything, on every namespace, including IAM management"),
}


def parse_permissions(value: str) -> frozenset[str]:
    """``"pull,push"`` → ``{"pull", "push"}``. Raises ValueError naming an unknown permission."""
    perms = frozenset(p.strip() for p in value.split(",") if p.strip())
    unknown = perms - set(PERMISSIONS)
    if unknown or not perms:
        raise ValueError(f"permissions must be a non-empty subset of {','.join(PERMISSIONS)}; got {value!r}")
    return perms


@dataclass(frozen=True)
class Namespace:
    name: str
    description: str = ""
    public: bool = False
    created: float = 0.0


@dataclass(frozen=True)
class Principal:
    """A user or service account."""

    kind: str
    name: str
    description: str = ""
    created: float = 0.0
    disabled: bool = False


@dataclass(frozen=True)
class Credential:
    """An access credential: ``username`` + secret (stored only as an argon2id hash)."""

    username: str
    principal_kind: str
    principal_name: str
    description: str = ""
    created: float = 0.0
    expires: float | None = None
    last_used: float | None = None
    revoked: float | None = None

    def usable(self, now: float) -> bool:
        return self.revoked is None and (self.expires is None or now < self.expires)


@dataclass(frozen=True)
class Role:
    name: str
    permissions: frozenset[str]
    description: str = ""
    builtin: bool = False


@dataclass(frozen=True)
class Binding:
    """``role`` granted on ``namespace`` (``*``: every namespace) to a user, service account or team."""

    role: str
    namespace: str
    subject_kind: str
    subject_name: str


@dataclass(frozen=True)
class Identity:
    """Who is making a request. ``kind`` is "anonymous" for requests without credentials."""

    kind: str
    name: str
    credential: str | None = None
    teams: tuple[str, ...] = ()
    grants: dict[str, frozenset[str]] = field(default_factory=dict)  # namespace (or "*") → permissions
    admin: bool = False

    @property
    def subject(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def anonymous(self) -> bool:
        return self.kind == "anonymous"


ANONYMOUS = Identity("anonymous", "")
