"""Load :class:`Settings` from TOML + environment, rejecting unknown keys and bad values at start."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit

from config.settings import Settings

ENV_PREFIX = "REGISTRY__"
MAX_WORKERS = 64


class ConfigError(ValueError):
    """A configuration problem, with a message naming the key and what is wrong."""


def _coerce(key: str, hint: Any, value: Any, from_env: bool) -> Any:
    if hint is bool:
        if from_env and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint is int or hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if from_env and isinstance(value, str):
            try:
                return hint(value.strip())
            except ValueError:
                raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        if isinstance(value, int) or (hint is float and isinstance(value, float)):
            return hint(value)
        raise ConfigError(f"{key}: expected {'an integer' if hint is int else 'a number'}, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if hint == tuple[str, ...]:
        if from_env and isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
    raise ConfigError(f"{key}: unsupported setting type {hint!r}")  # pragma: no cover


def _section(name: str, cls: type[Any], values: Mapping[str, Any], from_env: bool, base: Any) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown key {name}.{key} (known: {', '.join(sorted(known))})")
        changes[key] = _coerce(f"{name}.{key}", hints[key], value, from_env)
    return dataclasses.replace(base, **changes)


def settings_from_mapping(data: Mapping[str, Any], base: Settings | None = None, from_env: bool = False) -> Settings:
    """Overlay ``data`` (``{section: {key: value}}``) on ``base``.

    Raises:
        ConfigError: unknown section or key, or a value of the wrong type.
    """
    settings = base or Settings()
    sections = {f.name: f for f in dataclasses.fields(Settings)}
    hints = get_type_hints(Settings)
    changes: dict[str, Any] = {}
    for name, values in data.items():
        if name not in sections:
            raise ConfigError(f"unknown section [{name}] (known: {', '.join(sorted(sections))})")
        if not isinstance(values, Mapping):
            raise ConfigError(f"[{name}] must be a table")
        changes[name] = _section(name, hints[name], values, from_env, getattr(settings, name))
    return validate(dataclasses.replace(settings, **changes))


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        parts = key[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"environment variable {key}: expected {ENV_PREFIX}SECTION__KEY")
        data.setdefault(parts[0], {})[parts[1]] = value
    return data


def load_settings(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Embedded defaults, then the TOML file at ``path``, then ``REGISTRY__SECTION__KEY`` variables,
    then ``overrides`` (command-line flags).

    Raises:
        ConfigError: the file is unreadable or invalid, or any key or value is wrong.
    """
    settings = Settings()
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        settings = settings_from_mapping(data, settings)
    env = _env_overrides(os.environ if environ is None else environ)
    if env:
        settings = settings_from_mapping(env, settings, from_env=True)
    if overrides:
        settings = settings_from_mapping(overrides, settings)
    return settings


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:5000`` for IPv6).

    Raises:
        ConfigError: malformed address or port.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"server.listen: expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def validate(settings: Settings) -> Settings:
    """Cross-field checks that a type alone cannot express.

    Raises:
        ConfigError: naming the key.
    """
    server = settings.server
    parse_listen(server.listen)
    if server.public_url:
        parts = urlsplit(server.public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ConfigError(f"server.public_url: expected scheme://host[:port], got {server.public_url!r}")
    for proxy in server.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(f"server.trusted_proxies: {proxy!r} is not an IP address or CIDR") from None
    if bool(server.tls_cert) != bool(server.tls_key):
        raise ConfigError("server.tls_cert and server.tls_key must be set together")
    auth = settings.auth
    if auth.mode not in ("token", "none"):
        raise ConfigError(f"auth.mode: unsupported mode {auth.mode!r} (supported: token, none)")
    if auth.token_lifetime < 60 or auth.token_lifetime > 3600:
        raise ConfigError("auth.token_lifetime: must be between 60 and 3600 seconds")
    if auth.refresh_lifetime < auth.token_lifetime:
        raise ConfigError("auth.refresh_lifetime: must not be shorter than auth.token_lifetime")
    if auth.argon2_time_cost < 1 or auth.argon2_memory_kib < 8 or auth.argon2_parallelism < 1:
        raise ConfigError("auth.argon2_*: time_cost >= 1, memory_kib >= 8, parallelism >= 1")
    if auth.argon2_max_concurrent < 1 or auth.failed_login_limit < 1 or auth.failed_login_window < 1:
        raise ConfigError("auth: argon2_max_concurrent, failed_login_limit and failed_login_window must be >= 1")
    if auth.realm and urlsplit(auth.realm).scheme not in ("http", "https"):
        raise ConfigError(f"auth.realm: expected an absolute http(s) URL, got {auth.realm!r}")
    if bool(auth.k8s_issuer) != bool(auth.k8s_jwks):
        raise ConfigError("auth.k8s_issuer and auth.k8s_jwks must be set together")
    if settings.limits.manifest_max_bytes < 1024:
        raise ConfigError("limits.manifest_max_bytes: must be at least 1024")
    if settings.limits.chunk_min_length < 0:
        raise ConfigError("limits.chunk_min_length: must not be negative")
    if not 1 <= settings.limits.page_size_default <= settings.limits.page_size_max:
        raise ConfigError("limits.page_size_default: must be between 1 and limits.page_size_max")
    if settings.uploads.ttl_seconds < 60 or settings.uploads.purge_interval_seconds < 1:
        raise ConfigError("uploads: ttl_seconds must be >= 60 and purge_interval_seconds >= 1")
    if settings.log.level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"log.level: expected debug, info, warning or error, got {settings.log.level!r}")
    if settings.log.format not in ("text", "json"):
        raise ConfigError(f"log.format: expected text or json, got {settings.log.format!r}")
    if server.keep_alive_timeout <= 0 or server.graceful_timeout < 0:
        raise ConfigError("server.keep_alive_timeout must be > 0 and server.graceful_timeout >= 0")
    if not 1 <= server.workers <= MAX_WORKERS:
        raise ConfigError(f"server.workers: must be between 1 and {MAX_WORKERS}, got {server.workers}")
    events = settings.events
    if events.retention_days < 0 or events.retention_max_rows < 0 or events.feed_max_wait_seconds < 1:
        raise ConfigError("events: retention_days and retention_max_rows must be >= 0, feed_max_wait_seconds >= 1")
    return settings
