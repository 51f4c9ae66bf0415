"""Progress of long CLI work (gc, fsck, audit export, backup, restore) on a terminal: one ``\\r``-rewritten line.

Adapter for terminal output only: :class:`TerminalProgress` writes to a stream (stderr) and is silent unless
enabled, which by default means "the stream is a TTY" -- so piped or redirected output of a command is exactly
what it was without progress. Work that reports progress takes a :class:`ProgressSink`; :data:`NO_PROGRESS` is the
silent default. Updates are throttled (``min_interval``), so reporting every item costs nothing on big stores.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Protocol, TextIO

CLEAR_LINE = "\x1b[K"


class ProgressSink(Protocol):
    """Where work reports how far it is: ``phase`` opens a named phase (``total`` items, None if unknown),
    ``advance`` counts items (and bytes) done in it, ``done`` ends the last phase."""

    def phase(self, name: str, total: int | None = None) -> None: ...

    def advance(self, items: int = 1, nbytes: int = 0) -> None: ...

    def done(self) -> None: ...


class _NoProgress:
    def phase(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        pass

    def done(self) -> None:
        pass


NO_PROGRESS: ProgressSink = _NoProgress()


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class TerminalProgress:
    """A :class:`ProgressSink` drawing ``<command>: <phase> <done>/<total> (<pct>%) <bytes>`` on ``stream``.

    Args:
        command: prefix of the line (``gc``, ``fsck``, …).
        enabled: True/False force it on/off (``--progress``/``--no-progress``); None: on when ``stream`` is a TTY.
        stream: default ``sys.stderr``.
        min_interval: seconds between redraws (the last state of a phase is always drawn).
    """

    def __init__(
        self, command: str, enabled: bool | None = None, stream: TextIO | None = None, min_interval: float = 0.1
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.command = command
        self.min_interval = min_interval
        self.name = ""
        self.total: int | None = None
        self.items = 0
        self.nbytes = 0
        self._drawn = 0.0
        self._open = False

    def phase(self, name: str, total: int | None = None) -> None:
        self._finish_line()
        self.name, self.total, self.items, self.nbytes = name, total, 0, 0
        self._draw(force=True)

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        self.items += items
        self.nbytes += nbytes
        self._draw(force=self.total is not None and self.items >= self.total)

    def done(self) -> None:
        self._finish_line()

    def line(self) -> str:
        """The text of the current state (without control characters)."""
        text = f"{self.command}: {self.name}"
        if self.total is not None or self.items:
            text += f" {self.items}"
        if self.total is not None:
            pct = 100 if self.total == 0 else min(100, self.items * 100 // self.total)
            text += f"/{self.total} ({pct}%)"
        if self.nbytes:
            text += f" {human_bytes(self.nbytes)}"
        return text

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn < self.min_interval:
            return
        self._drawn = now
        self.stream.write("\r" + self.line() + CLEAR_LINE)
        self.stream.flush()
        self._open = True

    def _finish_line(self) -> None:
        if self.enabled and self._open:
            self._drawn = 0.0
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    """``--progress/--no-progress`` on a command; the value is None (auto: stderr is a TTY) unless given."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress on stderr (default: only when stderr is a terminal)",
    )
