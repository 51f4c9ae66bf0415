"""The registry's DSSE attestations verify with third-party implementations (securesystemslib's DSSE, pure-Python
ECDSA, the in-toto attestation framework's Statement validation) and fail when payload, signature or key change.
The same check on attestations a running registry published: test_registry_e2e.py."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import ecdsa  # type: ignore[import-untyped]
import pytest
from ecdsa.util import sigdecode_der  # type: ignore[import-untyped]
from securesystemslib.exceptions import VerificationError

from registry.extensions.attest.dsse import sign_envelope, statement
from registry.extensions.attest.keys import AttestationKeys
from tests.supplychain.thirdparty import validate_statement, verify_envelope

DIGEST = "sha256:" + "ab" * 32


def signed(keys: AttestationKeys) -> dict[str, Any]:
    predicate = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"name": "é-ünïcode"}]}
    doc: dict[str, Any] = json.loads(
        sign_envelope(statement("ns/app", DIGEST, "https://cyclonedx.org/bom", predicate), keys.signer())
    )
    return doc


def test_securesystemslib_and_in_toto_accept_the_envelope(tmp_path: Path) -> None:
    keys = AttestationKeys(tmp_path / "attestation")
    envelope = signed(keys)
    stmt = verify_envelope(json.dumps(envelope).encode(), keys.history())
    assert stmt["subject"] == [{"name": "ns/app", "digest": {"sha256": "ab" * 32}}]
    assert stmt["predicateType"] == "https://cyclonedx.org/bom"
    assert stmt["predicate"]["components"] == [{"name": "é-ünïcode"}]
    # After a rotation the old envelope still verifies with the published (retired) key.
    keys.rotate()
    assert verify_envelope(json.dumps(envelope).encode(), keys.history()) == stmt


def test_altered_payload_signature_or_key_fail(tmp_path: Path) -> None:
    keys = AttestationKeys(tmp_path / "attestation")
    envelope = signed(keys)
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["subject"][0]["digest"]["sha256"] = "cd" * 32
    forged = {**envelope, "payload": base64.b64encode(json.dumps(payload).encode()).decode()}
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[-1] ^= 1
    bad_sig = {**envelope, "signatures": [{**envelope["signatures"][0], "sig": base64.b64encode(sig).decode()}]}
    retyped = {**envelope, "payloadType": "application/json"}  # the type is covered by PAE too
    for altered in (forged, bad_sig):
        with pytest.raises(VerificationError):
            verify_envelope(json.dumps(altered).encode(), keys.history())
    with pytest.raises(AssertionError):
        verify_envelope(json.dumps(retyped).encode(), keys.history())
    other = AttestationKeys(tmp_path / "other")
    other.signer()
    # The same keyid but another key's PEM: securesystemslib refuses.
    impostor = [{**keys.history()[0], "public_key": other.history()[0]["public_key"]}]
    with pytest.raises(VerificationError):
        verify_envelope(json.dumps(envelope).encode(), impostor)


def test_python_ecdsa_is_a_real_second_check(tmp_path: Path) -> None:
    """python-ecdsa, not OpenSSL, refuses a signature over another PAE (guards against a vacuous helper)."""
    keys = AttestationKeys(tmp_path / "attestation")
    envelope = signed(keys)
    key = ecdsa.VerifyingKey.from_pem(keys.history()[0]["public_key"])
    sig = base64.b64decode(envelope["signatures"][0]["sig"])
    with pytest.raises(ecdsa.BadSignatureError):
        key.verify(sig, b"DSSEv1 0  0 ", hashfunc=hashlib.sha256, sigdecode=sigdecode_der)


def test_in_toto_validation_rejects_a_statement_without_digests() -> None:
    doc = {"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "x", "digest": {}}],
           "predicateType": "https://cyclonedx.org/bom", "predicate": {}}  # fmt: skip
    with pytest.raises(ValueError, match="digest"):
        validate_statement(json.dumps(doc).encode())
