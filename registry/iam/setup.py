"""Build the IAM and token services from settings (shared by the server and the ``registry admin`` CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from config import Settings
from registry.iam.k8s import K8sTokenVerifier
from registry.iam.ratelimit import FailureLimiter
from registry.iam.secrets import Argon2Params, SecretHasher, VerifiedCache
from registry.iam.service import IamService
from registry.iam.store import SqliteIamStore
from registry.storage.sqlite_db import SqliteDatabase
from registry.tokens.issuer import TokenSettings
from registry.tokens.service import TokenService


@dataclass
class IamStack:
    store: SqliteIamStore
    iam: IamService
    tokens: TokenService
    service_name: str


def service_name(settings: Settings) -> str:
    """The token ``aud``/``service``: configured, else the public host, else "registry"."""
    return settings.auth.service or urlsplit(settings.server.public_url).netloc or "registry"


def build_iam(settings: Settings, db: SqliteDatabase) -> IamStack:
    auth = settings.auth
    store = SqliteIamStore(db)
    hasher = SecretHasher(
        Argon2Params(auth.argon2_time_cost, auth.argon2_memory_kib, auth.argon2_parallelism),
        max_concurrent=auth.argon2_max_concurrent,
    )
    window = auth.failed_login_window
    limiter = FailureLimiter(auth.failed_login_limit, window, window)
    source_limiter = FailureLimiter(auth.failed_login_limit * 5, window, window)
    k8s = K8sTokenVerifier(auth.k8s_issuer, auth.k8s_jwks, auth.k8s_audience) if auth.k8s_issuer else None
    iam = IamService(
        store, hasher, VerifiedCache(ttl=auth.basic_cache_ttl), limiter, k8s=k8s, source_limiter=source_limiter
    )
    name = service_name(settings)
    token_settings = TokenSettings(auth.issuer or name, name, auth.token_lifetime, auth.refresh_lifetime)
    return IamStack(store, iam, TokenService(store, token_settings), name)
