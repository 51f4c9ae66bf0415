"""What every handler needs: the service, the settings, and how to build external URLs."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from config import Settings
from registry.api.http import Request
from registry.oci import errors as e
from registry.storage.service import RegistryService

if TYPE_CHECKING:
    from registry.api.auth import Authorizer
    from registry.api.pullgate import PullGate
    from registry.audit.chain import AuditEntry


@dataclass(frozen=True)
class ApiContext:
    service: RegistryService
    settings: Settings
    auth: Authorizer | None = None  # None: --auth none
    audit: Callable[[AuditEntry], Awaitable[None]] | None = None  # the audit log (registry.api.audit_events)
    pull_gate: PullGate | None = None  # None: every stored manifest may be pulled

    def _trusted(self, host: str) -> bool:
        if not self.settings.server.trusted_proxies or not host:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(net, strict=False) for net in self.settings.server.trusted_proxies)

    def base_url(self, req: Request) -> str:
        """``public_url`` when set; else what a trusted proxy says in X-Forwarded-Proto/-Host; else ""
        (URLs are then relative paths, which every client resolves against the request URL)."""
        if self.settings.server.public_url:
            return self.settings.server.public_url.rstrip("/")
        if self._trusted(req.client_host):
            proto = req.header("x-forwarded-proto")
            host = req.header("x-forwarded-host")
            if proto in ("http", "https") and host and "/" not in host and " " not in host:
                return f"{proto}://{host.split(',')[0].strip()}"
        return ""

    def client_address(self, req: Request) -> str:
        """The client's address: the peer, or the first X-Forwarded-For entry if the peer is trusted."""
        forwarded = req.header("x-forwarded-for")
        if forwarded and self._trusted(req.client_host):
            return forwarded.split(",")[0].strip()
        return req.client_host


def page_args(ctx: ApiContext, req: Request) -> tuple[int, str | None]:
    """``n`` and ``last`` for tags and catalog pagination. ``n`` is capped at ``limits.page_size_max``.

    Raises:
        RegistryError: ``PAGINATION_NUMBER_INVALID`` for a non-numeric or negative ``n``.
    """
    limits = ctx.settings.limits
    raw = req.arg("n")
    if raw is None or raw == "":
        n = limits.page_size_default
    elif raw.isdigit():
        n = min(int(raw), limits.page_size_max)
    else:
        raise e.RegistryError(e.PAGINATION_INVALID, detail={"n": raw[:50]})
    return n, req.arg("last") or None
