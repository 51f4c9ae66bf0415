"""Log setup for the primary: ``log.format = "text"`` (human) or ``"json"`` (one JSON object per line).

JSON lines carry ``ts``, ``level``, ``logger``, ``msg`` and the ``request_id`` of the request being served (from
:data:`registry.metrics.request_id`). Access lines (logger ``registry.access``) are built from a fixed list of
hypercorn's atoms -- method, path without query, status, bytes, duration, request id, client -- never from request
headers, so ``Authorization`` and cookies cannot reach the log.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

from registry.metrics import request_id

ACCESS_FIELDS = {"m": "method", "U": "path", "s": "status", "b": "bytes", "D": "duration_us", "h": "client"}


class JsonFormatter(logging.Formatter):
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
            doc["request_id"] = atoms["{x-request-id}o"]
        else:
            doc["msg"] = record.getMessage()
            rid = request_id.get()
            if rid != "-":
                doc["request_id"] = rid
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup_logging(level: str, fmt: str = "text") -> None:
    """Configure the root logger on stderr in ``fmt`` ("text" or "json")."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler], force=True)
