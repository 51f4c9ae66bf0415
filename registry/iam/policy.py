"""Pure authorization decisions. No I/O: callers pass the identity and what they know of namespaces.

The rules:
- a role bound on a namespace grants its permissions on every repository ``<namespace>/…``;
- a role bound on ``*`` (the admin role) grants them on every namespace;
- anyone, anonymous included, may ``pull`` from a public namespace and list its tags;
- ``push`` implies the right to read what you push (clients ask for ``pull,push``);
- ``list`` governs tags/list and which repositories the catalog shows; ``delete`` governs deletes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from registry.iam.model import ALL_NAMESPACES, LIST, PULL, PUSH, Identity
from registry.oci.names import namespace_of
from registry.oci.scope import Scope

CATALOG = Scope("registry", "catalog", ("*",))


def namespace_permissions(identity: Identity, namespace: str, public: bool) -> frozenset[str]:
    """What ``identity`` may do in ``namespace`` (which exists; ``public`` is its anonymous-pull flag)."""
    perms = set(identity.grants.get(namespace, frozenset())) | set(identity.grants.get(ALL_NAMESPACES, frozenset()))
    if PUSH in perms:
        perms.add(PULL)
    if public:
        perms.update((PULL, LIST))
    return frozenset(perms)


def repository_actions(
    identity: Identity, repository: str, namespace_lookup: Callable[[str], bool | None]
) -> frozenset[str]:
    """Permissions on ``repository``. ``namespace_lookup(ns)`` returns the public flag, or None if the
    namespace does not exist (then nothing is allowed: content can only live in existing namespaces)."""
    if "/" not in repository:
        return frozenset()
    namespace = namespace_of(repository)
    public = namespace_lookup(namespace)
    if public is None:
        return frozenset()
    return namespace_permissions(identity, namespace, public)


def grant_scopes(
    identity: Identity, requested: Iterable[Scope], namespace_lookup: Callable[[str], bool | None]
) -> list[Scope]:
    """The intersection of what was asked and what is allowed (a partial grant is not an error).

    ``registry:catalog:*`` is granted to every authenticated identity; the catalog itself then shows only
    the repositories of namespaces where the identity has ``list``.
    """
    granted: list[Scope] = []
    for scope in requested:
        if scope.type == "repository":
            allowed = repository_actions(identity, scope.name, namespace_lookup)
            if "*" in scope.actions:
                actions = tuple(sorted(allowed))
            else:
                actions = tuple(a for a in scope.actions if a in allowed)
            granted.append(Scope(scope.type, scope.name, actions))
        elif scope.type == "registry" and scope.name == "catalog":
            granted.append(Scope("registry", "catalog", ("*",) if not identity.anonymous else ()))
    return [g for g in granted if g.actions]


def can_list(identity: Identity, namespace: str, public: bool) -> bool:
    return LIST in namespace_permissions(identity, namespace, public)
