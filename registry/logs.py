"""Log setup for the primary: ``log.format = "text"`` (human) or ``"json"`` (one JSON object per line).

JSON lines are shaped by :class:`registry.oci.jsonlog.JsonLineFormatter` (shared with the edge) and carry the
``request_id`` of the request being served (:data:`request_id`, set by registry.metrics' wrapper). Access lines (logger
``registry.access``) are built from a fixed list of hypercorn's atoms, never from request headers, so
``Authorization`` and cookies cannot reach the log.
"""

from __future__ import annotations

import contextvars
import logging
import sys

from registry.oci.jsonlog import JsonLineFormatter

# The request id of the request being served (set by registry.metrics' wrapper), for every log line.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def current_request_id() -> str | None:
    rid = request_id.get()
    return None if rid == "-" else rid


def setup_logging(level: str, fmt: str = "text") -> None:
    """Configure the root logger on stderr in ``fmt`` ("text" or "json")."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonLineFormatter(current_request_id))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler], force=True)
