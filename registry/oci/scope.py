"""Docker token-auth scopes and JWT access claims (shared by the registry's token service and edge).

Grammar (distribution ``docs/spec/auth/scope.md``)::

    scope        = resourcetype [ "(" resourceclass ")" ] ":" resourcename ":" action *( "," action )
    resourcename = [ hostname "/" ] component *( "/" component )    ; a hostname may carry ":port"

The resource name may therefore contain colons: the type ends at the first ``:``, the actions start after
the last one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_TYPE = re.compile(r"[a-z0-9]+(?:\([a-z0-9]+\))?")
_ACTION = re.compile(r"[a-z0-9_*-]+")


@dataclass(frozen=True, order=True)
class Scope:
    """One requested or granted access: ``repository:ns/app:pull,push``."""

    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def claim(self) -> dict[str, object]:
        """The JWT ``access`` claim entry."""
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def parse_scope(value: str) -> Scope | None:
    """Parse one scope; None if malformed (callers ignore malformed scopes, as Distribution does)."""
    first = value.find(":")
    last = value.rfind(":")
    if first <= 0 or last == first:
        return None
    rtype, name, actions = value[:first], value[first + 1 : last], value[last + 1 :]
    if not _TYPE.fullmatch(rtype) or not name:
        return None
    parsed = tuple(dict.fromkeys(a for a in actions.split(",") if a))
    if not all(_ACTION.fullmatch(a) for a in parsed):
        return None
    return Scope(rtype.split("(", 1)[0], name, parsed)


def parse_scopes(values: Iterable[str]) -> list[Scope]:
    """Parse repeated and/or space-separated scope parameters; identical resources are merged."""
    merged: dict[tuple[str, str], list[str]] = {}
    for value in values:
        for part in value.split():
            scope = parse_scope(part)
            if scope is None:
                continue
            actions = merged.setdefault((scope.type, scope.name), [])
            actions.extend(a for a in scope.actions if a not in actions)
    return [Scope(t, n, tuple(a)) for (t, n), a in merged.items()]


def access_claims(scopes: Iterable[Scope]) -> list[dict[str, object]]:
    return [s.claim() for s in scopes if s.actions]


def allowed_actions(access: object, rtype: str, name: str) -> set[str]:
    """The actions a verified token's ``access`` claim grants on ``rtype:name``."""
    granted: set[str] = set()
    if not isinstance(access, list):
        return granted
    for entry in access:
        if (
            isinstance(entry, dict)
            and entry.get("type") == rtype
            and entry.get("name") == name
            and isinstance(entry.get("actions"), list)
        ):
            granted.update(a for a in entry["actions"] if isinstance(a, str))
    return granted


def challenge(realm: str, service: str, scopes: Iterable[Scope], error: str | None = None) -> str:
    """A ``WWW-Authenticate: Bearer`` challenge value."""
    parts = [f'realm="{realm}"', f'service="{service}"']
    scope_text = " ".join(str(s) for s in scopes)
    if scope_text:
        parts.append(f'scope="{scope_text}"')
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ",".join(parts)


_CHALLENGE_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))')


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    """``WWW-Authenticate`` value → (scheme in lower case, auth-params); ("", {}) when empty.

    Only the first challenge of the header is read (registries send one).
    """
    scheme, _, rest = value.strip().partition(" ")
    params: dict[str, str] = {}
    for match in _CHALLENGE_PARAM.finditer(rest):
        quoted, token = match.group(2), match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else token
    return scheme.lower(), params
