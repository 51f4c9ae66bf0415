"""Retention and immutable-tag rules (pure): parsing the policy file and planning what a policy deletes.

Policy file (TOML, ``retention.policy_file``; default ``<data>/retention.toml``)::

    [[rule]]                       # retention: combined per repository as Harbor does
    namespace = "apps"             # required
    repositories = "*"             # glob on the path inside the namespace ("web", "team/*"); default "*"
    tags = ["*"]                   # tag globs the rule applies to; default every tag
    exclude_tags = ["latest"]      # tag globs it never applies to
    keep_last = 5                  # keep the N most recently pushed of the matched manifests
    keep_pushed_days = 30          # keep those pushed within D days
    keep_pulled_days = 7           # keep those pulled within D days (pulls on the primary and edges)
    untagged = "keep"              # "keep" (default) or "remove": untagged manifests join the matched set

    [[immutable]]
    namespace = "apps"
    repositories = "*"
    tags = ["v*"]                  # matching tags can be neither moved nor deleted

Combination: a manifest is deleted when some rule matches it and no rule keeps it. Manifests a rule does
not match are kept. Registry-generated artifacts (manifests with a subject: SBOMs, scan reports,
attestations; and cosign ``sha256-<hex>.att|.sig|.sbom`` tags) are neither counted nor matched: they follow
their subject and go when it goes. Children of a kept index are kept; immutable-tagged manifests are kept.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

COSIGN_TAG = re.compile(r"^sha256-([0-9a-f]{64})\.(att|sig|sbom)$")


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Selector:
    namespace: str
    repositories: str = "*"
    tags: tuple[str, ...] = ("*",)
    exclude_tags: tuple[str, ...] = ()

    def matches_repo(self, repo: str) -> bool:
        ns, _, rest = repo.partition("/")
        return ns == self.namespace and fnmatchcase(rest, self.repositories)

    def matches_tag(self, tag: str) -> bool:
        return any(fnmatchcase(tag, p) for p in self.tags) and not any(fnmatchcase(tag, p) for p in self.exclude_tags)


@dataclass(frozen=True)
class Rule:
    selector: Selector
    keep_last: int = 0
    keep_pushed_days: float = 0
    keep_pulled_days: float = 0
    remove_untagged: bool = False


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] = ()
    immutable: tuple[Selector, ...] = ()

    def is_immutable(self, repo: str, tag: str) -> bool:
        return any(s.matches_repo(repo) and s.matches_tag(tag) for s in self.immutable)


@dataclass(frozen=True)
class Artifact:
    """One manifest linked in a repository, as retention sees it."""

    digest: str
    tags: tuple[str, ...]
    pushed: float
    pulled: float | None = None
    subject: str | None = None
    children: tuple[str, ...] = field(default=())


def _strings(doc: dict[str, Any], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = doc.get(key, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{key}: expected a list of strings")
    return tuple(value)


def _selector(doc: dict[str, Any]) -> Selector:
    namespace = doc.get("namespace")
    if not isinstance(namespace, str) or not namespace:
        raise PolicyError("namespace: required")
    repositories = doc.get("repositories", "*")
    if not isinstance(repositories, str):
        raise PolicyError("repositories: expected a glob string")
    return Selector(namespace, repositories, _strings(doc, "tags", ("*",)), _strings(doc, "exclude_tags", ()))


_RULE_KEYS = {"namespace", "repositories", "tags", "exclude_tags", "keep_last", "keep_pushed_days"}
_RULE_KEYS |= {"keep_pulled_days", "untagged"}


def parse_policy(text: str) -> Policy:
    """Raises ``PolicyError`` naming the bad key (unknown keys are errors)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(str(exc)) from None
    unknown = set(doc) - {"rule", "immutable"}
    if unknown:
        raise PolicyError(f"unknown section(s): {sorted(unknown)}")
    rules = []
    for n, raw in enumerate(doc.get("rule", [])):
        extra = set(raw) - _RULE_KEYS
        if extra:
            raise PolicyError(f"rule {n}: unknown key(s) {sorted(extra)}")
        untagged = raw.get("untagged", "keep")
        if untagged not in ("keep", "remove"):
            raise PolicyError(f"rule {n}: untagged must be keep or remove")
        numbers = {}
        for key in ("keep_last", "keep_pushed_days", "keep_pulled_days"):
            value = raw.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise PolicyError(f"rule {n}: {key} must be a number >= 0")
            numbers[key] = value
        rules.append(
            Rule(
                _selector(raw),
                int(numbers["keep_last"]),
                float(numbers["keep_pushed_days"]),
                float(numbers["keep_pulled_days"]),
                untagged == "remove",
            )
        )
    immutable = []
    for n, raw in enumerate(doc.get("immutable", [])):
        extra = set(raw) - {"namespace", "repositories", "tags", "exclude_tags"}
        if extra:
            raise PolicyError(f"immutable {n}: unknown key(s) {sorted(extra)}")
        immutable.append(_selector(raw))
    return Policy(tuple(rules), tuple(immutable))


def load_policy(path: Path) -> Policy:
    return parse_policy(path.read_text()) if path.exists() else Policy()


def generated(artifact: Artifact) -> bool:
    """Registry-generated (follows its subject): has a subject, or only cosign-style tags."""
    return artifact.subject is not None or (bool(artifact.tags) and all(COSIGN_TAG.match(t) for t in artifact.tags))


def plan(repo: str, artifacts: list[Artifact], policy: Policy, now: float) -> list[str]:
    """Digests ``policy`` deletes from ``repo`` (sorted), including the generated artifacts that follow."""
    rules = [r for r in policy.rules if r.selector.matches_repo(repo)]
    if not rules:
        return []
    images = [a for a in artifacts if not generated(a)]
    matched: set[str] = set()
    kept: set[str] = set()
    for rule in rules:
        chosen = [
            a
            for a in images
            if any(rule.selector.matches_tag(t) for t in a.tags) or (not a.tags and rule.remove_untagged)
        ]
        matched |= {a.digest for a in chosen}
        by_push = sorted(chosen, key=lambda a: (a.pushed, a.digest), reverse=True)
        kept |= {a.digest for a in by_push[: rule.keep_last]}
        if rule.keep_pushed_days:
            kept |= {a.digest for a in chosen if a.pushed >= now - rule.keep_pushed_days * 86400}
        if rule.keep_pulled_days:
            cutoff = now - rule.keep_pulled_days * 86400
            kept |= {a.digest for a in chosen if a.pulled is not None and a.pulled >= cutoff}
    kept |= {a.digest for a in images if any(policy.is_immutable(repo, t) for t in a.tags)}
    kept |= {a.digest for a in images if a.digest not in matched}
    by_digest = {a.digest: a for a in artifacts}
    stack = list(kept)
    while stack:  # children of kept indexes stay
        current = by_digest.get(stack.pop())
        for child in () if current is None else current.children:
            if child not in kept and child in by_digest:
                kept.add(child)
                stack.append(child)
    doomed = {a.digest for a in images if a.digest not in kept}
    changed = True
    while changed:  # generated artifacts follow their subject
        changed = False
        for a in artifacts:
            if a.digest in doomed or not generated(a):
                continue
            target = a.subject
            if target is None:
                found = next((COSIGN_TAG.match(t) for t in a.tags if COSIGN_TAG.match(t)), None)
                target = None if found is None else f"sha256:{found.group(1)}"
            if target is not None and target in doomed:
                doomed.add(a.digest)
                changed = True
    return sorted(doomed)
