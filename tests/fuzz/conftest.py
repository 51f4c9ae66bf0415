"""Fuzz counters: every generated case a fuzz test sends or checks is counted, and the totals are printed at
the end of the run (``fuzz cases tried: …``) for docs/reliability.md."""

from __future__ import annotations

from collections import Counter

import pytest

CASES: Counter[str] = Counter()


def tried(family: str, n: int = 1) -> None:
    CASES[family] += n


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if CASES:
        terminalreporter.write_line(f"fuzz cases tried: {sum(CASES.values())} {dict(sorted(CASES.items()))}")
