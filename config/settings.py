"""The registry's settings as frozen dataclasses. Every field has an embedded default.

A new key is added here and nowhere else: the loader derives the TOML schema, the environment overrides
and the validation from these classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServerSettings:
    listen: str = "127.0.0.1:5000"
    # Externally visible scheme://host[:port]; used for every Location/Link and the token realm.
    # Empty: answer with relative URLs (never derived from the bind address).
    public_url: str = ""
    # Peers (IPs or CIDRs) whose X-Forwarded-For/-Proto/-Host headers are believed.
    trusted_proxies: tuple[str, ...] = ()
    tls_cert: str = ""
    tls_key: str = ""
    keep_alive_timeout: float = 5.0
    graceful_timeout: float = 30.0


@dataclass(frozen=True)
class StorageSettings:
    root: str = "./data"


@dataclass(frozen=True)
class AuthSettings:
    # "none": an open registry (explicit opt-in, logged loudly).
    mode: str = "none"


@dataclass(frozen=True)
class LimitSettings:
    manifest_max_bytes: int = 4 * 1024 * 1024
    # Minimum PATCH chunk size announced with OCI-Chunk-Min-Length (0: no minimum).
    chunk_min_length: int = 0
    # Tags/catalog page size when a client sends no n, and the largest n accepted.
    page_size_default: int = 1000
    page_size_max: int = 10000


@dataclass(frozen=True)
class UploadSettings:
    # Upload sessions untouched for this long are purged.
    ttl_seconds: int = 24 * 3600
    purge_interval_seconds: int = 600


@dataclass(frozen=True)
class LogSettings:
    level: str = "info"
    access_log: bool = False


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    uploads: UploadSettings = field(default_factory=UploadSettings)
    log: LogSettings = field(default_factory=LogSettings)
