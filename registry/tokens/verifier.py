"""Verifying registry tokens: the pure rules live in ``registry.oci.tokens`` (shared with edge nodes)."""

from registry.oci.tokens import (
    TokenError,
    public_key_from_jwk,
    public_keys_from_jwks,
    verify_access,
    verify_refresh,
)

__all__ = ["TokenError", "public_key_from_jwk", "public_keys_from_jwks", "verify_access", "verify_refresh"]
