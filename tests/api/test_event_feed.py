"""The event feed (``GET /api/v1/events``) on a real primary with auth on (mode: token): long-poll, server-sent
events with resume, and filtering by the caller's pull rights."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.edge.authprimary import AuthPrimary, auth_primary
from tests.imagebuild import build_image

__all__ = ["auth_primary"]


def admin_auth(primary: AuthPrimary) -> tuple[str, str]:
    doc = json.loads((primary.proc.data / "admin-credential.json").read_text())
    return doc["username"], doc["password"]


def feed(primary: AuthPrimary, auth: Any, **params: Any) -> httpx.Response:
    return httpx.get(f"{primary.url}/api/v1/events", params=params, auth=auth, timeout=60)


def head(primary: AuthPrimary) -> str:
    response = feed(primary, admin_auth(primary), after="latest")
    assert response.status_code == 200, response.text
    assert response.json()["events"] == []
    return str(response.json()["cursor"])


def test_long_poll_wakes_on_push_and_resumes(auth_primary: AuthPrimary, tmp_path: Path) -> None:
    primary = auth_primary
    cursor = head(primary)
    image = build_image(tmp_path / "img", text="feed long poll\n", tag="v1")
    pusher = threading.Timer(0.7, primary.push_image, ("team-a/feed", image, "v1"))
    started = time.monotonic()
    pusher.start()
    try:
        response = feed(primary, admin_auth(primary), after=cursor, wait=20)
    finally:
        pusher.join()
    took = time.monotonic() - started
    assert response.status_code == 200, response.text
    doc = response.json()
    assert 0.5 < took < 15, took  # woke on the commit, not at the deadline
    first = doc["events"][0]
    assert first["type"] == "manifest.pushed" and first["repository"] == "team-a/feed"
    assert first["digest"] == image.manifest_digest
    assert first["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert first["time"].endswith("Z") and first["id"].isdigit()
    # The tag event may land in the same answer or the next; resuming from the cursor never repeats or skips.
    events = list(doc["events"])
    again = feed(primary, admin_auth(primary), after=doc["cursor"], wait=2).json()
    events += again["events"]
    assert [(ev["type"], ev["tag"]) for ev in events] == [("manifest.pushed", None), ("tag.moved", "v1")]
    assert events[1]["previousDigest"] is None and events[1]["digest"] == image.manifest_digest
    # Resuming from an older cursor redelivers (at least once).
    replay = feed(primary, admin_auth(primary), after=cursor).json()
    assert [ev["id"] for ev in replay["events"]][:2] == [ev["id"] for ev in events]
    # Nothing new: an empty answer after the wait, cursor unchanged.
    started = time.monotonic()
    idle = feed(primary, admin_auth(primary), after=replay["cursor"], wait=1).json()
    assert idle["events"] == [] and idle["cursor"] == replay["cursor"] and time.monotonic() - started >= 0.9


def test_feed_filters_by_pull_rights(auth_primary: AuthPrimary, tmp_path: Path) -> None:
    primary = auth_primary
    cursor = head(primary)
    primary.push_image("team-b/hidden", build_image(tmp_path / "b", text="team b\n", tag="v1"), "v1")
    primary.push_image("team-a/shown", build_image(tmp_path / "a", text="team a\n", tag="v1"), "v1")
    reader = (primary.reader.username, primary.reader.password)
    seen = feed(primary, reader, after=cursor).json()
    assert {ev["repository"] for ev in seen["events"]} == {"team-a/shown"}
    everything = feed(primary, admin_auth(primary), after=cursor).json()
    assert {ev["repository"] for ev in everything["events"]} == {"team-a/shown", "team-b/hidden"}
    assert seen["cursor"] == everything["cursor"]
    # A Bearer token from the token service works as well as Basic.
    token = primary.token(primary.reader, "repository:team-a/shown:pull")
    bearer = httpx.get(
        f"{primary.url}/api/v1/events", params={"after": cursor}, headers={"Authorization": f"Bearer {token}"}
    )
    assert {ev["repository"] for ev in bearer.json()["events"]} == {"team-a/shown"}
    # namespace= narrows; asking for a namespace without pull is refused; anonymous is refused.
    only_a = feed(primary, admin_auth(primary), after=cursor, namespace="team-a").json()
    assert {ev["repository"] for ev in only_a["events"]} == {"team-a/shown"}
    denied = feed(primary, reader, after=cursor, namespace="team-b")
    assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == "DENIED"
    anonymous = feed(primary, None, after=cursor)
    assert anonymous.status_code == 401 and anonymous.json()["errors"][0]["code"] == "UNAUTHORIZED"
    bad = feed(primary, reader, after="yesterday")
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "INVALID"


def read_sse(response: httpx.Response, count: int) -> list[dict[str, str]]:
    """The first ``count`` dispatched server-sent events (fields of each) of a streaming response."""
    found: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in fields:
                found.append(fields)
                if len(found) == count:
                    return found
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    return found


def test_server_sent_events_and_last_event_id(auth_primary: AuthPrimary, tmp_path: Path) -> None:
    primary = auth_primary
    cursor = head(primary)
    image = build_image(tmp_path / "img", text="feed sse\n", tag="v1")
    headers = {"Accept": "text/event-stream"}
    with httpx.Client(base_url=primary.url, auth=admin_auth(primary), timeout=30) as client:
        pusher = threading.Timer(0.5, primary.push_image, ("team-a/sse", image, "v1"))
        pusher.start()
        try:
            with client.stream("GET", "/api/v1/events", params={"after": cursor, "wait": 20}, headers=headers) as r:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
                events = read_sse(r, 2)
        finally:
            pusher.join()
        assert [ev["event"] for ev in events] == ["manifest.pushed", "tag.moved"]
        assert json.loads(events[0]["data"])["id"] == events[0]["id"]
        # Reconnect as a browser would, with Last-Event-ID (it wins over ?after=): only what came later.
        resume = {**headers, "Last-Event-ID": events[0]["id"]}
        with client.stream("GET", "/api/v1/events", params={"after": cursor, "wait": 1}, headers=resume) as r:
            rest = read_sse(r, 10)
        assert [(ev["event"], json.loads(ev["data"])["tag"]) for ev in rest] == [("tag.moved", "v1")]

