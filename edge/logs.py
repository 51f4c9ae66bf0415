"""Log setup for an edge node: ``log_format = "text"`` (human) or ``"json"`` (one JSON object per line, the same
shape as the primary's: :class:`registry.oci.jsonlog.JsonLineFormatter`).

JSON lines carry the ``request_id`` of the request being served (:data:`edge.promexport.request_id`: the client's
``X-Request-Id`` or a generated one, also forwarded to the upstream, so the primary logs the same id). Access lines
(logger ``edge.access``) hold method, path without query, status, bytes, duration, client and request id only --
never headers, so credentials cannot reach the log.
"""

from __future__ import annotations

import logging
import sys

from edge.promexport import request_id
from registry.oci.jsonlog import JsonLineFormatter


def setup_logging(level: str, fmt: str = "text") -> None:
    """Configure the root logger on stderr in ``fmt`` ("text" or "json"); quiet httpx below debug."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonLineFormatter(request_id.get))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler], force=True)
    if level.lower() != "debug":
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per upstream request otherwise
