"""What ``registry serve`` listens with: hypercorn's configuration from the settings, and the start-up log line.

Light on imports on purpose: the ``server.workers`` supervisor (registry/workers.py) binds the sockets with it
without loading the application.
"""

from __future__ import annotations

import logging
import os
import ssl

from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets

from config import Settings
from config.loader import parse_listen

log = logging.getLogger("registry")


class ListenConfig(HypercornConfig):
    """Keeps the SSLContext hypercorn creates, so certificates can be reloaded in place."""

    ssl_context: ssl.SSLContext | None = None

    def create_ssl_context(self) -> ssl.SSLContext | None:
        self.ssl_context = super().create_ssl_context()
        return self.ssl_context


def hypercorn_config(settings: Settings) -> ListenConfig:
    server = settings.server
    host, port = parse_listen(server.listen)
    config = ListenConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    # hypercorn's HTTP/2 on the trio worker crashed under load: offer HTTP/1.1 only.
    config.alpn_protocols = ["http/1.1"]
    config.h2_max_concurrent_streams = 1
    config.keep_alive_timeout = server.keep_alive_timeout
    config.graceful_timeout = server.graceful_timeout
    config.accesslog = logging.getLogger("registry.access") if settings.log.access_log else None
    config.access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss rid=%({x-request-id}o)s'
    config.errorlog = logging.getLogger("hypercorn.error")
    if server.tls_cert:
        config.certfile = server.tls_cert
        config.keyfile = server.tls_key
    return config



def log_listening(settings: Settings, bind: str) -> None:
    if settings.auth.mode == "none":
        log.warning(
            "AUTHENTICATION IS DISABLED (--auth none): anyone who can reach %s can push, pull and delete", bind
        )
    log.info("registry listening on %s (data: %s)", bind, os.path.abspath(settings.storage.root))


class ListenError(Exception):
    """The listening address cannot be bound (in use, not local, no permission)."""


def bind(config: HypercornConfig, listen: str) -> Sockets:
    """Bind and listen on ``config``'s addresses before anything else starts, so a port in use is one clear
    message (``ListenError``) rather than a traceback from inside the server."""
    try:
        sockets = config.create_sockets()
    except OSError as exc:
        raise ListenError(f"cannot listen on {listen}: {exc.strerror or exc}") from exc
    for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
        sock.listen(config.backlog)
    return sockets
