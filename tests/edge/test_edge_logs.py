"""Edge JSON logs: the primary's line shape, one request id from the client through the edge to the primary (given
or generated), and no credentials in either log -- with passthrough auth, so Basic credentials and tokens flow."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import CHEAP_ARGON2
from tests.edge.edgeproc import EdgeProcess
from tests.edge.ocipush import sha256
from tests.serverproc import RegistryProcess

JSON_LOGS = {"REGISTRY__LOG__FORMAT": "json", "REGISTRY__LOG__ACCESS_LOG": "true"}
START_SECONDS = 90  # generous: the shared CI machine is sometimes very busy


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line is JSON: a text line here fails the test


def access(lines: list[dict[str, Any]], logger: str, path: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == logger and line["path"] == path]


def test_edge_json_logs_share_the_request_id_with_the_primary_and_hold_no_secrets(tmp_path: Path) -> None:
    primary = RegistryProcess(tmp_path / "data", "--auth", "token", env={**CHEAP_ARGON2, **JSON_LOGS})
    edge = EdgeProcess(tmp_path / "edge0", "", "--auth-mode", "passthrough", "--log-format", "json", "--access-log")
    try:
        primary.start(timeout=START_SECONDS)
        admin = json.loads((primary.data / "admin-credential.json").read_text())
        credentials = (admin["username"], admin["password"])
        blobs = [b"first edge log blob " * 100, b"second edge log blob " * 100]
        with httpx.Client(base_url=primary.url, auth=credentials, timeout=30) as client:
            assert client.post("/api/v1/namespaces", json={"name": "logs"}).status_code == 201
            for data in blobs:
                response = client.post(f"/v2/logs/app/blobs/uploads/?digest={sha256(data)}", content=data)
                assert response.status_code == 201, response.text
        edge.upstream = primary.url
        edge.start(timeout=START_SECONDS)
        paths = [f"/v2/logs/app/blobs/{sha256(data)}" for data in blobs]
        with httpx.Client(base_url=edge.url, auth=credentials, timeout=60) as client:
            given = client.get(paths[0], headers={"X-Request-Id": "edge-json-1"})
            generated = client.get(paths[1])
            refused = client.get(paths[0], auth=("nobody", "edge-wrong-password"))
    finally:
        edge.stop()
        primary.stop()
    primary_log, edge_log = primary.log_text(), edge.log_text()
    assert given.status_code == 200 and given.content == blobs[0]
    assert generated.status_code == 200 and generated.content == blobs[1]
    assert refused.status_code == 401
    assert given.headers["x-request-id"] == "edge-json-1"
    new_id = generated.headers["x-request-id"]
    assert len(new_id) == 32 and new_id != "edge-json-1"

    edge_lines, primary_lines = json_lines(edge_log), json_lines(primary_log)
    for line in edge_lines + primary_lines:
        assert {"ts", "level", "logger", "msg"} <= line.keys() and line["ts"].endswith("Z")
    assert any(line["msg"].startswith("edge listening on") for line in edge_lines)
    for path, rid in zip(paths, ("edge-json-1", new_id), strict=True):
        at_edge = access(edge_lines, "edge.access", path)
        assert (at_edge[0]["method"], at_edge[0]["status"], at_edge[0]["request_id"]) == ("GET", "200", rid)
        assert {"bytes", "duration_us", "client"} <= at_edge[0].keys()
        # the edge's upstream fetch of the same blob is logged by the primary under the same id
        assert rid in {line["request_id"] for line in access(primary_lines, "registry.access", path)}
    # the Basic -> token exchange the edge made for the first request carries the id too
    assert any(line["request_id"] == "edge-json-1" for line in access(primary_lines, "registry.access", "/token"))

    basic = base64.b64encode(f"{admin['username']}:{admin['password']}".encode()).decode()
    for log in (edge_log, primary_log):
        for secret in (admin["password"], basic, "edge-wrong-password", "Bearer ", "eyJ"):
            assert secret not in log
