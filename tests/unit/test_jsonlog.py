"""The shared JSON log line (registry.oci.jsonlog): its shape, the request id, and only fixed access fields."""

from __future__ import annotations

import json
import logging

from hypercorn.logging import AccessLogAtoms

from registry.oci.jsonlog import JsonLineFormatter


def record(name: str, msg: str, args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)  # type: ignore[arg-type]


def test_application_line_carries_the_current_request_id() -> None:
    formatter = JsonLineFormatter(lambda: "rid-7")
    line = json.loads(formatter.format(record("edge", "filled %s", ("sha256:ab",))))
    assert line["msg"] == "filled sha256:ab" and line["request_id"] == "rid-7"
    assert line["level"] == "info" and line["logger"] == "edge" and line["ts"].endswith("Z")
    assert "request_id" not in json.loads(JsonLineFormatter(lambda: None).format(record("edge", "start", ())))


def test_access_line_has_fixed_fields_and_never_headers() -> None:
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v2/a/b/blobs/sha256:ab",
        "raw_path": b"/v2/a/b/blobs/sha256:ab",
        "query_string": b"token=not-a-field",
        "root_path": "",
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 5000),
        "headers": [(b"authorization", b"Basic c2VjcmV0OnNlY3JldA=="), (b"cookie", b"s=secret")],
    }
    response = {"status": 200, "headers": [(b"x-request-id", b"rid-9"), (b"content-length", b"3")]}
    atoms = AccessLogAtoms(scope, response, 0.25)  # type: ignore[arg-type]
    text = JsonLineFormatter(lambda: None).format(record("edge.access", "%(h)s", atoms))
    line = json.loads(text)
    assert line["msg"] == "access" and line["request_id"] == "rid-9"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/v2/a/b/blobs/sha256:ab", "200")
    assert set(line) == {
        "ts",
        "level",
        "logger",
        "msg",
        "method",
        "path",
        "status",
        "bytes",
        "duration_us",
        "client",
        "request_id",
    }
    assert "secret" not in text and "c2VjcmV0" not in text and "not-a-field" not in text
