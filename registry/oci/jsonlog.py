"""JSON log lines, shared by the primary and the edge: one object per line. Pure: it formats records, writes nothing.

Every line has ``ts`` (UTC, milliseconds), ``level``, ``logger``, ``msg``, and ``request_id`` when the line belongs
to a request. Access lines (a logger named ``*.access``, fed by hypercorn with its atoms as the record's args) carry a
fixed list of fields -- method, path *without* the query string, status, bytes, duration, client, and the request
id from the answer's ``X-Request-Id`` -- never request headers, so ``Authorization`` and cookies cannot reach a log.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

# hypercorn access-log atom -> JSON field
ACCESS_FIELDS = {"m": "method", "U": "path", "s": "status", "b": "bytes", "D": "duration_us", "h": "client"}
REQUEST_ID_ATOM = "{x-request-id}o"  # the response header both servers set on every answer


class JsonLineFormatter(logging.Formatter):
    """Formats a record as one JSON line.

    Args:
        request_id: returns the id of the request being served in the current context, or None outside one.
    """

    def __init__(self, request_id: Callable[[], str | None]) -> None:
        super().__init__()
        self.request_id = request_id

    @staticmethod
    def converter(secs: float | None = None) -> time.struct_time:
        return time.gmtime(secs)

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if record.name.endswith(".access") and isinstance(record.args, Mapping):
            atoms = record.args
            doc["msg"] = "access"
            for atom, field in ACCESS_FIELDS.items():
                doc[field] = atoms[atom]
            doc["request_id"] = atoms[REQUEST_ID_ATOM]
        else:
            doc["msg"] = record.getMessage()
            rid = self.request_id()
            if rid:
                doc["request_id"] = rid
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)
