"""Log setup for the primary: ``log.format = "text"`` (human) or ``"json"`` (one JSON object per line).

JSON lines are shaped by :class:`registry.oci.jsonlog.JsonLineFormatter` (shared with the edge) and carry the
``request_id`` of the request being served (from :data:`registry.metrics.request_id`). Access lines (logger
``registry.access``) are built from a fixed list of hypercorn's atoms, never from request headers, so
``Authorization`` and cookies cannot reach the log.
"""

from __future__ import annotations

import logging
import sys

from registry.metrics import request_id
from registry.oci.jsonlog import JsonLineFormatter


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
