"""What the registry must show after a crash: the acknowledged state, plus the operations in flight.

A key is ``("blob", repo, digest)`` / ``("manifest", repo, digest)`` (value: present or not) or
``("tag", repo, tag)`` (value: the digest it names, or None). Each worker owns its repository and runs one
operation at a time, so at a crash at most one operation per worker is in flight. An acknowledged operation
moves its keys to their new values for certain; an operation in flight when the server died is *pending*:
afterwards its keys must show, all together, either the values before it or the values after it (a
manifest put with a tag is one transaction: the manifest and the tag move together or not at all).
After each restart the observed values become the new certain state.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

Key = tuple[str, str, str]
Value = bool | str | None


@dataclass(frozen=True)
class Pending:
    """An operation the server may or may not have applied before it died."""

    what: str
    before: Mapping[Key, Value]
    after: Mapping[Key, Value]


@dataclass
class Content:
    """Every blob and manifest body ever sent, by digest (to re-verify bytes), with manifest media types."""

    body: dict[str, bytes] = field(default_factory=dict)
    media_type: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, digest: str, data: bytes, media_type: str = "") -> None:
        with self.lock:
            self.body[digest] = data
            if media_type:
                self.media_type[digest] = media_type


@dataclass
class Tally:
    """Counts for the report: operations acknowledged, in flight at a kill, and keys checked."""

    acked: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    keys_checked: int = 0
    acked_keys_checked: int = 0
    landed_unacked: int = 0
    uploads_resumed: int = 0

    def ack(self, what: str) -> None:
        self.acked[what] = self.acked.get(what, 0) + 1

    @property
    def acked_total(self) -> int:
        return sum(self.acked.values())


class RepoModel:
    """The expected state of one worker's repository. Only its worker thread touches it during a round."""

    def __init__(self, repo: str) -> None:
        self.repo = repo
        self.state: dict[Key, Value] = {}
        self.pending: list[Pending] = []
        self.pinned: set[str] = set()  # digests referenced by a manifest or index: never deleted

    def key(self, kind: str, name: str) -> Key:
        return (kind, self.repo, name)

    def value(self, key: Key) -> Value:
        return self.state.get(key, None if key[0] == "tag" else False)

    def present(self, kind: str) -> list[str]:
        """Names of the blobs/manifests present for certain (kind ``blob`` or ``manifest``)."""
        return [k[2] for k, v in self.state.items() if k[0] == kind and v is True]

    def tags(self) -> dict[str, str]:
        return {k[2]: v for k, v in self.state.items() if k[0] == "tag" and isinstance(v, str)}

    def acknowledged(self, after: Mapping[Key, Value]) -> None:
        self.state.update(after)

    def in_flight(self, what: str, after: Mapping[Key, Value]) -> None:
        self.pending.append(Pending(what, {k: self.value(k) for k in after}, dict(after)))

    def all_keys(self) -> set[Key]:
        keys = set(self.state)
        for p in self.pending:
            keys.update(p.after)
        return keys

    def settle(self, observed: Mapping[Key, Value]) -> list[str]:
        """Compare what the restarted server shows with what it must show; adopt it as the new state.

        Returns one message per violation (empty: consistent)."""
        problems = []
        uncertain: set[Key] = set()
        for p in self.pending:
            uncertain.update(p.after)
            seen = {k: observed[k] for k in p.after}
            if seen != dict(p.before) and seen != dict(p.after):
                problems.append(f"{p.what} in flight: shows {seen}, neither before {p.before} nor after {p.after}")
        for k, expected in self.state.items():
            if k not in uncertain and observed[k] != expected:
                problems.append(f"acknowledged {k} = {expected!r} but the server shows {observed[k]!r}")
        self.state = dict(observed)
        self.pending = []
        return problems
