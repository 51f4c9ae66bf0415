"""Pull statistics: the last time each manifest was served by this edge (cache hits included), batched in memory
and reported to the primary's ``POST /api/v1/pulls`` every ``pull_report_interval`` seconds, so retention rules
based on pulls see pulls the primary never served.

Memory is bounded: at most ``max_entries`` (repository, digest) pairs are held, each with its latest time; a
pull of a new pair while full is dropped and counted (``dropped``). A failed report puts its entries back
(merged with newer pulls, so retrying never duplicates and the pending set never grows past the bound); they
go out with the next report. On cancellation one last report is attempted (shielded, a few seconds at most).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import trio

log = logging.getLogger("edge.pullstats")

BATCH = 300  # entries per POST: the primary accepts bodies up to 64 KiB (docs/gc.md)
FINAL_REPORT_SECONDS = 5.0

Report = Callable[[Sequence[tuple[str, str, float]]], Awaitable[int]]


class PullReporter:
    """Collects pulls (:meth:`record`, from request handlers) and reports them (:meth:`serve_reports`)."""

    def __init__(self, report: Report, interval: float, max_entries: int) -> None:
        self.report = report
        self.interval = interval
        self.max_entries = max_entries
        self.pending: dict[tuple[str, str], float] = {}
        self.dropped = 0
        self.reported = 0
        self.failures = 0

    def record(self, repo: str, digest: str, at: float) -> None:
        """Remember a pull of ``repo@digest`` at ``at`` (wall clock); the latest time per pair is kept."""
        key = (repo, digest)
        known = self.pending.get(key)
        if known is not None:
            if at > known:
                self.pending[key] = at
        elif len(self.pending) < self.max_entries:
            self.pending[key] = at
        else:
            self.dropped += 1

    def _restore(self, entries: Sequence[tuple[str, str, float]]) -> None:
        for repo, digest, at in entries:
            self.record(repo, digest, at)

    async def flush(self) -> bool:
        """Report everything pending now. Returns False when a batch failed (its entries and the rest are kept
        for the next flush)."""
        batch = [(r, d, t) for (r, d), t in self.pending.items()]
        self.pending = {}
        for start in range(0, len(batch), BATCH):
            chunk = batch[start : start + BATCH]
            try:
                await self.report(chunk)
            except Exception as exc:
                self.failures += 1
                self._restore(batch[start:])
                log.warning("pull report to the primary failed (%d pending, retried later): %s", len(self.pending), exc)
                return False
            self.reported += len(chunk)
        return True

    async def serve_reports(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Report every ``interval`` seconds until cancelled; then try one last report."""
        task_status.started()
        try:
            while True:
                await trio.sleep(self.interval)
                await self.flush()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(FINAL_REPORT_SECONDS):
                if self.pending:
                    await self.flush()
