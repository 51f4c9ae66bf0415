"""The token service: signing keys, JWKS, issuing and verifying Docker registry tokens (JWT, ES256)."""
