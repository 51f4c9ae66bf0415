"""Outbox retention for the event feed: the window, the row cap, subscriber cursors, and the newest row."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from registry.storage.outbox_window import SqliteOutboxWindow
from registry.storage.sqlite_meta import SqliteMetadataStore, open_sqlite_metadata

DAY = 86400.0


@pytest.fixture
async def meta(tmp_path: Path) -> AsyncIterator[SqliteMetadataStore]:
    store = await open_sqlite_metadata(tmp_path / "registry.db")
    yield store
    await store.aclose()


async def add_events(meta: SqliteMetadataStore, times: list[float]) -> None:
    def w(conn: sqlite3.Connection) -> None:
        for at in times:
            conn.execute("INSERT INTO outbox(at, kind, repo) VALUES (?, 'manifest.pushed', 'ns/app')", (at,))

    await meta.db.write(w)


async def ids(window: SqliteOutboxWindow) -> list[int]:
    return [ev.id for ev in await window.events_after(0, 100)]


async def test_window_keeps_recent_and_undelivered_and_the_newest(meta: SqliteMetadataStore) -> None:
    window = SqliteOutboxWindow(meta.db)
    now = 100 * DAY
    await add_events(meta, [now - 10 * DAY, now - 9 * DAY, now - 8 * DAY, now - DAY])  # ids 1..4
    await meta.set_cursor("audit", 1)  # a subscriber that handled only event 1
    assert await window.prune(7, 0, now) == 1
    assert await ids(window) == [2, 3, 4] and await window.pruned_through() == 1
    await meta.set_cursor("audit", 4)
    assert await window.prune(7, 0, now) == 2
    assert await ids(window) == [4] and await window.pruned_through() == 3
    # Everything old and delivered: the newest row stays, so ids are never reused.
    assert await window.prune(7, 0, now + 30 * DAY) == 0
    await add_events(meta, [now + 30 * DAY])
    assert await ids(window) == [4, 5]


async def test_row_cap_and_no_limits(meta: SqliteMetadataStore) -> None:
    window = SqliteOutboxWindow(meta.db)
    now = 100 * DAY
    await add_events(meta, [now] * 10)
    assert await window.prune(0, 0, now) == 0  # no age limit, no cap: kept forever
    assert await window.prune(7, 4, now) == 6  # recent, but beyond the cap (no subscribers registered)
    assert await ids(window) == [7, 8, 9, 10] and await window.head() == 10
