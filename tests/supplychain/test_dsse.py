"""DSSE envelopes verify with an independent implementation, and fail when payload or signature change."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from registry.extensions.attest.dsse import VerificationError, sign_envelope, statement, verify_envelope
from registry.extensions.attest.keys import AttestationKeys

DIGEST = "sha256:" + "ab" * 32


def independent_verify(envelope: dict[str, Any], public_pem: str) -> dict[str, Any]:
    """A second, minimal DSSE v1 verifier written from the spec (PAE with byte lengths, standard base64)."""
    payload = base64.b64decode(envelope["payload"], validate=True)
    payload_type = envelope["payloadType"].encode("utf-8")
    pae = b" ".join([b"DSSEv1", str(len(payload_type)).encode(), payload_type, str(len(payload)).encode(), payload])
    key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    key.verify(base64.b64decode(envelope["signatures"][0]["sig"], validate=True), pae, ec.ECDSA(hashes.SHA256()))
    result: dict[str, Any] = json.loads(payload)
    return result


@pytest.fixture
def keys(tmp_path: Path) -> AttestationKeys:
    return AttestationKeys(tmp_path / "attestation")


def make(keys: AttestationKeys) -> dict[str, Any]:
    predicate = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"name": "é-ünïcode"}]}
    payload = statement("ns/app", DIGEST, "https://cyclonedx.org/bom", predicate)
    doc: dict[str, Any] = json.loads(sign_envelope(payload, keys.signer()))
    return doc


def test_independent_verifier_accepts_and_reads_the_statement(keys: AttestationKeys) -> None:
    envelope = make(keys)
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    [published] = keys.history()
    assert published["algorithm"] == "ecdsa-p256-sha256" and envelope["signatures"][0]["keyid"] == published["keyid"]
    stmt = independent_verify(envelope, published["public_key"])
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert stmt["subject"] == [{"name": "ns/app", "digest": {"sha256": "ab" * 32}}]
    assert stmt["predicateType"] == "https://cyclonedx.org/bom"
    assert verify_envelope(json.dumps(envelope).encode(), keys.public_keys()).statement == stmt


def test_altered_payload_or_signature_fails_both_verifiers(keys: AttestationKeys) -> None:
    envelope = make(keys)
    pem = keys.history()[0]["public_key"]
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["subject"][0]["digest"]["sha256"] = "cd" * 32
    forged = {**envelope, "payload": base64.b64encode(json.dumps(payload).encode()).decode()}
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[-1] ^= 1
    bad_sig = {**envelope, "signatures": [{**envelope["signatures"][0], "sig": base64.b64encode(sig).decode()}]}
    retyped = {**envelope, "payloadType": "application/json"}
    for altered in (forged, bad_sig):
        with pytest.raises(InvalidSignature):
            independent_verify(altered, pem)
        with pytest.raises(VerificationError):
            verify_envelope(json.dumps(altered).encode(), keys.public_keys())
    with pytest.raises(VerificationError):
        verify_envelope(json.dumps(retyped).encode(), keys.public_keys())


def test_rotation_keeps_old_keys_published(keys: AttestationKeys, tmp_path: Path) -> None:
    old = make(keys)
    first = keys.signer().keyid
    second = keys.rotate()
    assert second != first and keys.signer().keyid == second
    history = keys.history()
    assert [k["keyid"] for k in history] == [first, second]
    assert history[0]["retired"] is not None and history[1]["retired"] is None
    assert verify_envelope(json.dumps(old).encode(), keys.public_keys()).keyid == first
    assert oct((tmp_path / "attestation" / f"key-{second}.pem").stat().st_mode & 0o777) == "0o600"
    # A key outside the published history does not verify.
    with pytest.raises(VerificationError):
        verify_envelope(json.dumps(old).encode(), {second: keys.public_keys()[second]})
