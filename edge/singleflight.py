"""One flight per key: the first caller creates the work, every concurrent caller joins the same object.

Unlike Distribution's proxy (a global in-flight map checked and set in separate steps, so two concurrent misses
can both fetch), lookup and creation happen in one synchronous step on the trio event loop: no other task can
run in between, so there is never a second flight for a key while the first is registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """Flights in progress by key. Use only from the event loop (not thread-safe, needs no lock there)."""

    def __init__(self) -> None:
        self._flights: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self._flights.get(key)

    def claim(self, key: K, create: Callable[[], V]) -> tuple[V, bool]:
        """The flight for ``key``, creating it with ``create()`` if there is none. Returns (flight, created)."""
        flight = self._flights.get(key)
        if flight is not None:
            return flight, False
        flight = create()
        self._flights[key] = flight
        return flight, True

    def release(self, key: K, flight: V) -> None:
        """Forget ``flight`` (only if it is still the one registered for ``key``)."""
        if self._flights.get(key) is flight:
            del self._flights[key]

    def __len__(self) -> int:
        return len(self._flights)
