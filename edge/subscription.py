"""Subscriptions: prefetch what is pushed to chosen namespaces on the primary, read from its event feed.

A long-poll loop reads ``GET /api/v1/events`` (docs/events.md) with the edge's identity credential. Every
``tag.moved`` event in a subscribed namespace prefetches ``repository:tag`` (``edge.prefetch``: the tag mapping,
every platform, every blob), so clients pulling that tag are served from the cache even if the primary is down by
then. Untagged pushes (referrers, digest-only pushes) are not prefetched.

The cursor is stored in ``<cache_dir>/feed-cursor.json`` (atomically, after each page is handled) together with the
upstream URL, so a restart resumes where it stopped: delivery is at least once, and a prefetch repeated after a
crash finds everything cached. A fresh edge (or one pointed at another upstream) starts at the feed's head, not
its history. An unavailable upstream keeps the cursor (the page is retried with exponential backoff); a prefetch
the upstream refuses (404, 403) is logged, counted and skipped.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from edge.metrics import EdgeMetrics
from edge.prefetch import Prefetcher
from edge.primaryapi import PrimaryApi, PrimaryApiError
from edge.upstream import UpstreamUnavailable
from registry.oci import errors as e
from registry.oci.names import namespace_of

log = logging.getLogger("edge.subscription")

CURSOR_FILE = "feed-cursor.json"
POLL_WAIT = 60.0
MIN_BACKOFF, MAX_BACKOFF = 1.0, 60.0


class CursorFile:
    """``{"upstream": URL, "cursor": "…"}`` in the cache directory; written by temp file + rename."""

    def __init__(self, path: Path, upstream: str) -> None:
        self.path = path
        self.upstream = upstream

    def load(self) -> str | None:
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("upstream") != self.upstream or not isinstance(doc.get("cursor"), str):
            return None
        return str(doc["cursor"])

    def save(self, cursor: str) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump({"upstream": self.upstream, "cursor": cursor}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


class FeedSubscriber:
    def __init__(
        self,
        api: PrimaryApi,
        prefetcher: Prefetcher,
        namespaces: Sequence[str],
        cursor_file: CursorFile,
        metrics: EdgeMetrics,
        wait: float = POLL_WAIT,
    ) -> None:
        self.api = api
        self.prefetcher = prefetcher
        self.namespaces = frozenset(namespaces)
        self.cursor_file = cursor_file
        self.metrics = metrics
        self.wait = wait

    async def _handle(self, event: dict[str, Any]) -> bool:
        """Prefetch for one event. Returns False when the upstream was unavailable (retry the page later)."""
        repo, tag = str(event.get("repository", "")), event.get("tag")
        if event.get("type") != "tag.moved" or not isinstance(tag, str) or namespace_of(repo) not in self.namespaces:
            return True
        try:
            report = await self.prefetcher.prefetch(repo, tag)
        except UpstreamUnavailable as exc:
            log.warning("prefetch of %s:%s postponed: %s", repo, tag, exc)
            return False
        except e.RegistryError as exc:
            self.metrics.feed_failures += 1
            log.warning("prefetch of %s:%s skipped: %s %s", repo, tag, exc.code.code, exc.message)
            return True
        self.metrics.feed_prefetches += 1
        log.info(
            "prefetched %s:%s (%s): %d blob(s), %d byte(s) fetched",
            repo,
            tag,
            report.digest,
            report.blobs,
            report.bytes_fetched,
        )
        return True

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the feed until cancelled."""
        task_status.started()
        namespace = next(iter(self.namespaces)) if len(self.namespaces) == 1 else None
        cursor = await trio.to_thread.run_sync(self.cursor_file.load)
        backoff = MIN_BACKOFF
        while True:
            try:
                page = await self.api.events(cursor or "latest", namespace, 0.0 if cursor is None else self.wait)
            except PrimaryApiError as exc:
                self.metrics.feed_failures += 1
                log.warning("event feed: %s; retrying in %.0fs", exc, backoff)
                await trio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            if page.truncated:
                log.warning("event feed: events after cursor %s were pruned on the primary before we read them", cursor)
            handled = True
            for event in page.events:
                self.metrics.feed_events += 1
                if not await self._handle(event):
                    handled = False
                    break
            if not handled:
                await trio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = MIN_BACKOFF
            if page.cursor != cursor:
                cursor = page.cursor
                await trio.to_thread.run_sync(self.cursor_file.save, cursor)
