"""Edge settings: a frozen dataclass with embedded defaults, read from a flat TOML file and command-line overrides.

Unknown keys and values of the wrong type are errors at start (as in the primary's ``config`` package). The
edge does not read environment variables for configuration.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit

from edge.freshness import FreshnessPolicy

MIB = 1024 * 1024
AUTH_MODES = ("none", "passthrough", "identity")
LOG_FORMATS = ("text", "json")
DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_API = "https://registry-1.docker.io"


class SettingsError(ValueError):
    """A configuration problem, naming the key and what is wrong."""


@dataclass(frozen=True)
class EdgeSettings:
    listen: str = "127.0.0.1:5001"
    # The registry this edge caches (scheme://host[:port]); required.
    upstream: str = ""
    # Registry host names (as in image references, e.g. "registry.example.com") that containerd sends in
    # ?ns= and that mean the upstream. The upstream URL's own host[:port] is always one of them.
    upstream_names: tuple[str, ...] = ()
    cache_dir: str = "./edge-cache"
    cache_size_mib: int = 10240
    # A tag is served without asking the upstream for this long after it was last confirmed...
    tag_ttl: float = 60.0
    # ...and, when the upstream is down, for this much longer (answered with X-Edge-Stale: true).
    max_stale: float = 86400.0
    # A manifest by digest is confirmed again (HEAD) this long after the upstream last confirmed it, so a pull
    # policy switched on later on the primary is learned (docs/edge.md "Pull policies"); inf: never.
    digest_ttl: float = 300.0
    # Repositories whose upstream names a pull policy (X-Registry-Pull-Policy): tags and digests are confirmed
    # at least this often, and served stale for at most policy_max_stale (0: 503 as soon as unconfirmed).
    policy_ttl: float = 30.0
    policy_max_stale: float = 0.0
    connect_timeout: float = 5.0
    # Blob bodies: the longest silence tolerated from the upstream while a fill runs.
    read_timeout: float = 60.0
    # Manifests, HEADs, tag lists: a hung upstream turns into a stale answer (or 503) after this long.
    metadata_timeout: float = 10.0
    # Manifests larger than this are not accepted from the upstream.
    manifest_max_bytes: int = 4 * MIB
    keep_alive_timeout: float = 5.0
    graceful_timeout: float = 30.0
    log_level: str = "info"
    # "text" (human) or "json" (one object per line, as the primary's log.format = "json"; docs/operations.md).
    log_format: str = "text"
    access_log: bool = False
    # Client authentication (docs/edge.md "Authentication"): "none" (an open upstream, every client served),
    # "passthrough" (clients present the primary's Bearer token or Basic credentials; authorized per request)
    # or "identity" (the edge's own service account decides what unauthenticated clients may pull).
    auth_mode: str = "none"
    # The token service clients are sent to and tokens are checked against. Empty: learned from the upstream's
    # challenge on GET /v2/ (realm, service); the issuer defaults to the service (the primary's default).
    token_realm: str = ""
    token_service: str = ""
    token_issuer: str = ""
    # The edge's own credential for the upstream (identity mode; any mode may use it for its upstream requests).
    identity_username: str = ""
    identity_password_file: str = ""
    # How long an authorization decision (Basic exchange, identity grant) is reused.
    auth_cache_ttl: float = 30.0
    # The JWKS is refetched for an unknown key id at most this often.
    jwks_min_refresh: float = 10.0
    # Optional static header every client must send (identity mode: carried by the generated hosts.toml).
    client_header_name: str = ""
    client_header_value_file: str = ""
    # Pull statistics (docs/edge.md "Pull statistics"): the last pull time of every manifest served is reported
    # to the primary's POST /api/v1/pulls this often with the identity credential (0: never; needs the
    # identity credential), holding at most this many (repository, digest) pairs between reports.
    pull_report_interval: float = 30.0
    pull_report_max_entries: int = 10000
    # Subscriptions (docs/edge.md "Subscriptions"): namespaces whose pushes on the primary are prefetched
    # into this edge, read from the primary's event feed with the identity credential.
    subscribe_namespaces: tuple[str, ...] = ()

    def freshness(self) -> FreshnessPolicy:
        return FreshnessPolicy(
            tag_ttl=self.tag_ttl,
            max_stale=self.max_stale,
            digest_ttl=self.digest_ttl,
            policy_ttl=self.policy_ttl,
            policy_max_stale=self.policy_max_stale,
        )

    @property
    def cache_size_bytes(self) -> int:
        return self.cache_size_mib * MIB

    @property
    def upstream_url(self) -> str:
        """The upstream's base URL; Docker Hub's names mean its registry API host."""
        if self.docker_hub:
            return DOCKER_HUB_API
        return self.upstream.rstrip("/")

    @property
    def docker_hub(self) -> bool:
        return urlsplit(self.upstream).hostname in DOCKER_HUB_HOSTS

    @property
    def reports_pulls(self) -> bool:
        """Pull statistics go to the primary: an interval, an identity credential, and one of our primaries."""
        return self.pull_report_interval > 0 and bool(self.identity_username) and not self.docker_hub

    def names(self) -> frozenset[str]:
        """Every ``ns`` value that means the upstream."""
        hub = {"docker.io"} if self.docker_hub else set()
        return frozenset({urlsplit(self.upstream).netloc, *self.upstream_names, *hub})


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` → (host, port).

    Raises:
        SettingsError: malformed value or port out of range.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SettingsError(f"listen: expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _coerce(key: str, hint: Any, value: Any) -> Any:
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is str and isinstance(value, str):
        return value
    if hint == tuple[str, ...] and isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise SettingsError(f"{key}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def _validate(settings: EdgeSettings) -> EdgeSettings:
    parts = urlsplit(settings.upstream)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"upstream: expected http(s)://host[:port], got {settings.upstream!r}")
    parse_listen(settings.listen)
    if settings.cache_size_mib <= 0:
        raise SettingsError("cache_size_mib: must be positive")
    ttls = ("tag_ttl", "max_stale", "digest_ttl", "policy_ttl", "policy_max_stale")
    if any(not getattr(settings, key) >= 0 for key in ttls):
        raise SettingsError(f"{', '.join(ttls)} must not be negative")
    if settings.log_format not in LOG_FORMATS:
        raise SettingsError(f"log_format: expected text or json, got {settings.log_format!r}")
    if settings.auth_mode not in AUTH_MODES:
        raise SettingsError(f"auth_mode: expected one of {', '.join(AUTH_MODES)}, got {settings.auth_mode!r}")
    if bool(settings.identity_username) != bool(settings.identity_password_file):
        raise SettingsError("identity_username and identity_password_file must be set together")
    if settings.auth_mode == "identity" and not settings.identity_username:
        raise SettingsError("auth_mode identity needs identity_username and identity_password_file")
    if bool(settings.client_header_name) != bool(settings.client_header_value_file):
        raise SettingsError("client_header_name and client_header_value_file must be set together")
    if settings.pull_report_interval < 0 or settings.pull_report_max_entries < 1:
        raise SettingsError("pull_report_interval must be >= 0 and pull_report_max_entries >= 1")
    for ns in settings.subscribe_namespaces:
        if not ns or "/" in ns:
            raise SettingsError(f"subscribe_namespaces: {ns!r} is not a namespace (one path component)")
    for key in ("identity_password_file", "client_header_value_file"):
        path = getattr(settings, key)
        if path and not Path(path).is_file():
            raise SettingsError(f"{key}: {path} is not a readable file")
        if path and not read_secret(path):
            raise SettingsError(f"{key}: {path} is empty")
    return settings


def read_secret(path: str) -> str:
    """A secret from a ``*_file`` setting: the file's text without surrounding whitespace ("" if unset)."""
    return Path(path).read_text().strip() if path else ""


def load_settings(path: str | Path | None, overrides: dict[str, Any] | None = None) -> EdgeSettings:
    """Defaults, overlaid by the TOML file at ``path`` (if any), overlaid by ``overrides`` (None values skipped).

    Raises:
        SettingsError: unknown key, wrong type, unreadable file or an invalid combination.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data.update(tomllib.loads(Path(path).read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"{path}: {exc}") from None
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    hints = get_type_hints(EdgeSettings)
    known = {f.name for f in dataclasses.fields(EdgeSettings)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise SettingsError(f"unknown key {key} (known: {', '.join(sorted(known))})")
        changes[key] = _coerce(key, hints[key], value)
    return _validate(dataclasses.replace(EdgeSettings(), **changes))
