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
class ExtraUpstream:
    """One ``[[upstreams]]`` table: a further registry this edge caches beside the default ``upstream``.

    Chosen by ``?ns=`` or by a path prefix ``/v2/<name>/<repo>/...`` (``name`` one of :meth:`EdgeSettings.names`
    of :meth:`settings`); its repositories live in their own namespace of the edge's index.
    """

    url: str
    names: tuple[str, ...] = ()
    # The edge's credential for this upstream (Bearer token flow or Basic); empty: anonymous.
    username: str = ""
    password_file: str = ""

    def settings(self, base: EdgeSettings) -> EdgeSettings:
        """``base`` with this upstream as its (only) upstream: what ``open_upstream`` and the caches take."""
        return dataclasses.replace(
            base,
            upstream=self.url,
            upstream_names=self.names,
            identity_username=self.username,
            identity_password_file=self.password_file,
            auth_mode="none",
            subscribe_namespaces=(),
            upstreams=(),
        )


_EXTRA_KEYS = {f.name for f in dataclasses.fields(ExtraUpstream)}


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
    # Further upstreams (``[[upstreams]]`` tables in the file; docs/edge.md "Several upstreams"); needs
    # auth_mode = "none": client authorization is decided against the default upstream only.
    upstreams: tuple[ExtraUpstream, ...] = ()

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

    @property
    def upstream_id(self) -> str:
        """The upstream's canonical host[:port] (Docker Hub: ``docker.io``): its namespace in the edge's index."""
        return "docker.io" if self.docker_hub else urlsplit(self.upstream).netloc


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` → (host, port).

    Raises:
        SettingsError: malformed value or port out of range.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SettingsError(f"listen: expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _extra_upstream(index: int, value: Any) -> ExtraUpstream:
    key = f"upstreams[{index}]"
    if isinstance(value, ExtraUpstream):
        return value
    if not isinstance(value, dict):
        raise SettingsError(f"{key}: expected a table, got {value!r}")
    unknown = set(value) - _EXTRA_KEYS
    if unknown:
        raise SettingsError(f"{key}: unknown key {sorted(unknown)[0]} (known: {', '.join(sorted(_EXTRA_KEYS))})")
    hints = get_type_hints(ExtraUpstream)
    return ExtraUpstream(**{k: _coerce(f"{key}.{k}", hints[k], v) for k, v in value.items()})


def _coerce(key: str, hint: Any, value: Any) -> Any:
    if key == "upstreams" and isinstance(value, list | tuple):
        return tuple(_extra_upstream(i, v) for i, v in enumerate(value))
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
    _validate_upstreams(settings)
    for key in ("identity_password_file", "client_header_value_file"):
        path = getattr(settings, key)
        if path and not Path(path).is_file():
            raise SettingsError(f"{key}: {path} is not a readable file")
        if path and not read_secret(path):
            raise SettingsError(f"{key}: {path} is empty")
    return settings


def _validate_upstreams(settings: EdgeSettings) -> None:
    if settings.upstreams and settings.auth_mode != "none":
        raise SettingsError(
            f'upstreams: further upstreams need auth_mode = "none" (got {settings.auth_mode!r}); '
            'passthrough and identity decide against the default upstream only (docs/edge.md "Several upstreams")'
        )
    seen: dict[str, str] = {name: "upstream" for name in settings.names()}
    ids = {settings.upstream_id}
    for i, extra in enumerate(settings.upstreams):
        key = f"upstreams[{i}]"
        parts = urlsplit(extra.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError(f"{key}.url: expected http(s)://host[:port], got {extra.url!r}")
        if bool(extra.username) != bool(extra.password_file):
            raise SettingsError(f"{key}: username and password_file must be set together")
        if extra.password_file and not (Path(extra.password_file).is_file() and read_secret(extra.password_file)):
            raise SettingsError(f"{key}.password_file: {extra.password_file} is not a readable, non-empty file")
        one = extra.settings(settings)
        if one.upstream_id in ids:
            raise SettingsError(f"{key}: {one.upstream_id} is already configured as an upstream")
        ids.add(one.upstream_id)
        for name in one.names():
            if not name or "/" in name:
                raise SettingsError(f"{key}.names: {name!r} is not a registry host name")
            if name in seen:
                raise SettingsError(f"{key}.names: {name!r} already means {seen[name]}")
            seen[name] = key


def read_secret(path: str) -> str:
    """A secret from a ``*_file`` setting: the file's text without surrounding whitespace ("" if unset)."""
    return Path(path).read_text().strip() if path else ""


def load_settings(path: str | Path | None, overrides: dict[str, Any] | None = None) -> EdgeSettings:
    """Defaults, overlaid by the TOML file at ``path`` (if any), overlaid by ``overrides`` (None values skipped;
    ``upstreams`` in ``overrides`` are added to the file's).

    Raises:
        SettingsError: unknown key, wrong type, unreadable file or an invalid combination.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data.update(tomllib.loads(Path(path).read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"{path}: {exc}") from None
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if "upstreams" in overrides:  # the command line's further upstreams add to the file's
        overrides["upstreams"] = [*data.get("upstreams", []), *overrides["upstreams"]]
    data.update(overrides)
    hints = get_type_hints(EdgeSettings)
    known = {f.name for f in dataclasses.fields(EdgeSettings)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise SettingsError(f"unknown key {key} (known: {', '.join(sorted(known))})")
        changes[key] = _coerce(key, hints[key], value)
    return _validate(dataclasses.replace(EdgeSettings(), **changes))
