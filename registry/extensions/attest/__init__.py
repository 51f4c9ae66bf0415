"""Signed attestations: in-toto statements in DSSE envelopes, the attestation key and verification."""
