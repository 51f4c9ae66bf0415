"""Failed-authentication throttling: a sliding window of failures per key, then a lockout.

Pure and in memory: times are passed in as ``now`` (seconds, any monotonic origin). Callers choose the keys,
e.g. ``"cred:<username>"`` and ``"src:<ip>"``, and check :meth:`FailureLimiter.retry_after` before doing
any expensive verification. Memory is bounded: at most ``max_failures`` timestamps per key and at most
``max_keys`` keys (the least recently failed key is dropped first).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

__all__ = ["FailureLimiter"]


@dataclass
class _KeyState:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float | None = None


class FailureLimiter:
    """Lock a key for ``lockout`` seconds once it reaches ``max_failures`` failures within ``window`` seconds."""

    def __init__(
        self, max_failures: int = 10, window: float = 60.0, lockout: float = 60.0, max_keys: int = 100000
    ) -> None:
        if max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        if window <= 0 or lockout <= 0:
            raise ValueError("window and lockout must be positive")
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self.max_keys = max_keys
        self._keys: OrderedDict[str, _KeyState] = OrderedDict()

    def retry_after(self, key: str, now: float) -> float | None:
        """Return the seconds left before ``key`` may try again, or None if it is not locked."""
        state = self._keys.get(key)
        if state is None or state.locked_until is None:
            return None
        if now < state.locked_until:
            return state.locked_until - now
        del self._keys[key]  # the lockout is over and its failures were cleared when it began
        return None

    def record_failure(self, key: str, now: float) -> None:
        """Count a failure for ``key`` at ``now``; the ``max_failures``-th within ``window`` starts a lockout.

        A failure recorded while the key is locked neither counts nor extends the lockout.
        """
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState()
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(key)
        if state.locked_until is not None:
            if now < state.locked_until:
                return
            state.locked_until = None
        failures = state.failures
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        failures.append(now)
        if len(failures) >= self.max_failures:
            failures.clear()
            state.locked_until = now + self.lockout

    def record_success(self, key: str) -> None:
        """Forget every failure of ``key`` and lift its lockout, if any."""
        self._keys.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)
