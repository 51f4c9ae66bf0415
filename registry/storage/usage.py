"""UsageTracker: blob reference times and manifest pull times, batched in memory.

Reads must stay cheap, so a HEAD/GET never opens a write transaction: it records ``digest → time`` here
and ``serve_flush`` writes the batch (one transaction) every ``interval`` seconds, before each garbage
collection run, and at shutdown. Keeps the maximum time per key; bounded by the number of distinct keys
touched within one interval. A crash loses at most one interval of touches (the GC grace period, 2 h by
default, is far longer).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

log = logging.getLogger("registry.usage")

Flush = Callable[[dict[str, float], dict[tuple[str, str], float]], Awaitable[None]]


class UsageTracker:
    def __init__(self) -> None:
        self.blobs: dict[str, float] = {}
        self.pulls: dict[tuple[str, str], float] = {}

    def touch_blob(self, digest: str, now: float) -> None:
        if self.blobs.get(digest, 0.0) < now:
            self.blobs[digest] = now

    def pulled(self, repo: str, digest: str, now: float) -> None:
        key = (repo, digest)
        if self.pulls.get(key, 0.0) < now:
            self.pulls[key] = now

    def drain(self) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
        blobs, pulls = self.blobs, self.pulls
        self.blobs, self.pulls = {}, {}
        return blobs, pulls

    async def flush(self, write: Flush) -> None:
        """Write what was recorded; on failure the batch is merged back for the next attempt."""
        blobs, pulls = self.drain()
        if not blobs and not pulls:
            return
        try:
            await write(blobs, pulls)
        except BaseException:
            for digest, at in blobs.items():
                self.touch_blob(digest, at)
            for (repo, digest), at in pulls.items():
                self.pulled(repo, digest, at)
            raise

    async def serve_flush(
        self, write: Flush, interval: float, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Flush every ``interval`` seconds until cancelled; a final flush runs (shielded) on cancellation."""
        task_status.started()
        try:
            while True:
                await trio.sleep(interval)
                try:
                    await self.flush(write)
                except Exception:
                    log.exception("usage flush failed; retrying")
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await self.flush(write)
                except Exception:
                    log.exception("final usage flush failed")
