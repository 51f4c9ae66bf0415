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
    # Worker processes sharing the listening socket (registry/workers.py); 1 = one process, no supervisor.
    workers: int = 1


@dataclass(frozen=True)
class StorageSettings:
    root: str = "./data"


@dataclass(frozen=True)
class AuthSettings:
    # "token": IAM with Docker token auth and Basic auth (the default).
    # "none": an open registry with implicit namespaces (explicit opt-in, logged loudly).
    mode: str = "token"
    # Token service identity; empty: derived from server.public_url (or the request's Host).
    service: str = ""
    issuer: str = ""
    realm: str = ""
    token_lifetime: int = 300
    refresh_lifetime: int = 86400
    # First start: the admin credential is written to <data>/admin-credential.json (mode 0600),
    # or read from this file (a mounted Secret with {"username": …, "password": …}).
    admin_credential_file: str = ""
    # argon2id: explicit parameters (the library default of 64 MiB per hash breaks the memory bound when
    # many clients log in at once), and at most this many hashes at a time.
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1
    argon2_max_concurrent: int = 2
    # Verified Basic credentials are remembered this long (so per-request Basic auth stays cheap).
    basic_cache_ttl: int = 60
    # Failed logins per credential and per source address before 429 TOOMANYREQUESTS.
    failed_login_limit: int = 10
    failed_login_window: int = 60
    # Kubernetes service-account tokens as passwords: the cluster issuer, its JWKS (file path or URL),
    # and the audience the projected token must carry.
    k8s_issuer: str = ""
    k8s_jwks: str = ""
    k8s_audience: str = ""


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
class GcSettings:
    # Online garbage collection in the background (0: only on demand with `registry gc` or the API).
    interval_seconds: int = 3600
    # Unreferenced blobs (and referrers without a subject) go only after this long unreferenced.
    grace_seconds: int = 2 * 3600
    # Blob HEAD/GET touches and pull times are batched in memory and written this often.
    usage_flush_seconds: float = 10.0


@dataclass(frozen=True)
class RetentionSettings:
    # TOML policy file (retention rules and immutable tags); empty: <storage.root>/retention.toml.
    policy_file: str = ""
    # Apply the retention rules in the background this often (0: only on demand).
    interval_seconds: int = 0


@dataclass(frozen=True)
class AuditSettings:
    # Signed checkpoints (outside the database) at most this far apart: the window in which a truncated
    # tail of the audit log can go unnoticed.
    checkpoint_interval_seconds: float = 10.0
    # Records older than this are pruned (0: kept forever); pruning leaves a signed anchor.
    retention_days: int = 0
    # Share of successful manifest pulls recorded as audit events (0: none, 1: all). Pull times for
    # retention are tracked separately and always.
    pull_sample_rate: float = 0.0


@dataclass(frozen=True)
class LogSettings:
    level: str = "info"
    access_log: bool = False
    format: str = "text"  # "text" or "json" (one JSON object per line)


@dataclass(frozen=True)
class SupplyChainSettings:
    # SBOMs (CycloneDX + SPDX referrers) for every pushed image, generated in the background.
    sbom_on_push: bool = True
    # Address-space limit of the SBOM worker process (MiB).
    sbom_worker_memory_mb: int = 1024
    # Sign registry-generated SBOMs and scan reports (in-toto/DSSE attestations).
    attest: bool = True
    # Where the attestation key and its public history live; empty: <storage.root>/attestation.
    attestation_key_dir: str = ""


@dataclass(frozen=True)
class EventSettings:
    # Outbox events (the /api/v1/events feed) are kept this long, so feed consumers that were away can
    # resume without a gap; older ones are pruned once every in-process subscriber has handled them
    # (0: no age limit).
    retention_days: float = 7.0
    # A cap on the rows kept whatever their age (0: no cap): beyond it the oldest are pruned even inside the
    # window. The newest event is never pruned. A consumer whose cursor fell behind is told (``truncated``).
    retention_max_rows: int = 1_000_000
    # The longest long-poll wait / server-sent-events stream a feed request may ask for.
    feed_max_wait_seconds: float = 120.0


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    uploads: UploadSettings = field(default_factory=UploadSettings)
    log: LogSettings = field(default_factory=LogSettings)
    gc: GcSettings = field(default_factory=GcSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    supply_chain: SupplyChainSettings = field(default_factory=SupplyChainSettings)
    events: EventSettings = field(default_factory=EventSettings)
