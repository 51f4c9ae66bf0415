"""PolicySource: the retention/immutability policy file, re-read when it changes (checked at most once a
second), so an edited file takes effect without a restart. A file that fails to parse keeps the last good
policy and logs the error (``registry retention --dry-run`` reports it at once)."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

from registry.gc.rules import Policy, PolicyError, parse_policy

log = logging.getLogger("registry.retention")


class PolicySource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._policy = Policy()
        self._mtime: float | None = None
        self._checked = 0.0
        self.version = ""  # sha256 of the loaded file's text ("" without a file): audited on change

    def current(self) -> Policy:
        now = time.monotonic()
        if now - self._checked < 1.0:
            return self._policy
        self._checked = now
        try:
            mtime = os.stat(self.path).st_mtime
        except FileNotFoundError:
            self._policy, self._mtime, self.version = Policy(), None, ""
            return self._policy
        if mtime != self._mtime:
            try:
                text = self.path.read_text()
                self._policy = parse_policy(text)
                self.version = hashlib.sha256(text.encode()).hexdigest()
            except (OSError, PolicyError) as exc:
                log.error("retention policy %s not loaded (keeping the previous one): %s", self.path, exc)
            self._mtime = mtime
        return self._policy

    def is_immutable(self, repo: str, tag: str) -> bool:
        return self.current().is_immutable(repo, tag)


def policy_path(root: Path, configured: str) -> Path:
    return Path(configured) if configured else root / "retention.toml"
