"""DSSE v1 envelopes around in-toto Statement v1 (https://github.com/secure-systems-lab/dsse)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from registry.extensions.attest.keys import Signer

IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"


def pae(payload_type: str, payload: bytes) -> bytes:
    """Pre-Authentication Encoding: ``DSSEv1 <len(type)> <type> <len(body)> <body>`` (lengths in bytes)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def statement(subject_name: str, digest: str, predicate_type: str, predicate: Any) -> bytes:
    algorithm, encoded = digest.split(":", 1)
    doc = {
        "_type": STATEMENT_V1,
        "subject": [{"name": subject_name, "digest": {algorithm: encoded}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def sign_envelope(payload: bytes, signer: Signer, payload_type: str = IN_TOTO_PAYLOAD) -> bytes:
    sig = signer.sign(pae(payload_type, payload))
    envelope = {
        "payloadType": payload_type,
        "payload": base64.standard_b64encode(payload).decode(),
        "signatures": [{"keyid": signer.keyid, "sig": base64.standard_b64encode(sig).decode()}],
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


class VerificationError(Exception):
    pass


@dataclass(frozen=True)
class Verified:
    keyid: str
    statement: dict[str, Any]


def verify_envelope(data: bytes, keys: dict[str, ec.EllipticCurvePublicKey]) -> Verified:
    """Verify an envelope with any of ``keys``; returns the decoded statement.

    Raises:
        VerificationError: malformed envelope, wrong payload type, or no signature verifies.
    """
    try:
        envelope = json.loads(data)
        payload_type = envelope["payloadType"]
        payload = base64.standard_b64decode(envelope["payload"])
        signatures = envelope["signatures"]
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"malformed DSSE envelope: {exc}") from None
    if payload_type != IN_TOTO_PAYLOAD:
        raise VerificationError(f"unexpected payloadType {payload_type!r}")
    message = pae(payload_type, payload)
    for signature in signatures:
        try:
            sig = base64.standard_b64decode(signature["sig"])
        except (ValueError, KeyError, TypeError):
            continue
        candidates = [signature.get("keyid")] if signature.get("keyid") in keys else list(keys)
        for keyid in candidates:
            try:
                keys[keyid].verify(sig, message, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                continue
            try:
                doc = json.loads(payload)
            except ValueError:
                raise VerificationError("payload is not JSON") from None
            if not isinstance(doc, dict) or doc.get("_type") != STATEMENT_V1:
                raise VerificationError("payload is not an in-toto Statement v1")
            return Verified(keyid, doc)
    raise VerificationError("no signature verifies with the published attestation keys")
