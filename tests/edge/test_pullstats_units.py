"""PullReporter: latest time per manifest, bounded memory, failed reports retried without duplicates."""

from __future__ import annotations

from collections.abc import Sequence

from edge.pullstats import BATCH, PullReporter

D = "sha256:" + "a" * 64


class Primary:
    def __init__(self) -> None:
        self.received: list[tuple[str, str, float]] = []
        self.fail = False

    async def report(self, entries: Sequence[tuple[str, str, float]]) -> int:
        if self.fail:
            raise OSError("primary down")
        assert len(entries) <= BATCH
        self.received.extend(entries)
        return len(entries)


async def test_latest_time_kept_and_memory_bounded() -> None:
    primary = Primary()
    reporter = PullReporter(primary.report, 1.0, max_entries=3)
    reporter.record("ns/a", D, 10.0)
    reporter.record("ns/a", D, 5.0)  # older: ignored
    reporter.record("ns/a", D, 12.0)
    for name in ("ns/b", "ns/c", "ns/d", "ns/e"):
        reporter.record(name, D, 1.0)
    assert len(reporter.pending) == 3 and reporter.dropped == 2
    assert await reporter.flush()
    assert sorted(primary.received) == [("ns/a", D, 12.0), ("ns/b", D, 1.0), ("ns/c", D, 1.0)]
    assert reporter.pending == {} and reporter.reported == 3


async def test_failed_report_is_retried_and_merged() -> None:
    primary = Primary()
    reporter = PullReporter(primary.report, 1.0, max_entries=10_000)
    for i in range(BATCH + 5):
        reporter.record(f"ns/r{i}", D, 1.0)
    primary.fail = True
    assert not await reporter.flush()
    assert len(reporter.pending) == BATCH + 5 and reporter.failures == 1
    reporter.record("ns/r0", D, 2.0)  # a newer pull while the primary is down: merged, not duplicated
    assert len(reporter.pending) == BATCH + 5
    primary.fail = False
    assert await reporter.flush()
    assert len(primary.received) == BATCH + 5 and ("ns/r0", D, 2.0) in primary.received
    assert reporter.pending == {}
