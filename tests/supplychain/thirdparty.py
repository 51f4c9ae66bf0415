"""Verification of the registry's attestations with third-party implementations only (none of the registry's code):

* DSSE envelope parsing, PAE and signature check: ``securesystemslib.dsse.Envelope`` (the Secure Systems Lab's
  reference implementation used by in-toto and TUF), key from the published PEM as an ``SSlibKey``
  (``ecdsa`` / ``ecdsa-sha2-nistp256``) with the published keyid;
* the ECDSA P-256 signature once more with python-ecdsa, a pure-Python implementation (securesystemslib itself
  uses ``cryptography``/OpenSSL, as the registry does), over securesystemslib's PAE;
* the payload as an in-toto Statement v1: parsed into the in-toto attestation framework's protobuf
  (``in_toto_attestation``) and checked with its ``validate()``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import ecdsa  # type: ignore[import-untyped]
from ecdsa.util import sigdecode_der  # type: ignore[import-untyped]
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2  # type: ignore[import-untyped]
from in_toto_attestation.v1.statement import Statement  # type: ignore[import-untyped]
from securesystemslib.dsse import Envelope
from securesystemslib.signer import Key, SSlibKey

IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"


def verify_envelope(data: bytes, published: list[dict[str, Any]]) -> dict[str, Any]:
    """Verify a DSSE envelope against the published key history (``registry attest keys``); the statement.

    Raises:
        securesystemslib.exceptions.VerificationError: no published key verifies a signature.
        ecdsa.BadSignatureError: python-ecdsa disagrees.
        ValueError: not an in-toto Statement v1 (in_toto_attestation's validation).
    """
    envelope = Envelope.from_dict(json.loads(data))
    assert envelope.payload_type == IN_TOTO_PAYLOAD
    keys: list[Key] = [
        SSlibKey.from_dict(
            k["keyid"], {"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": k["public_key"]}}
        )
        for k in published
    ]
    accepted = envelope.verify(keys, 1)
    [keyid] = accepted
    [pem] = [k["public_key"] for k in published if k["keyid"] == keyid]
    verifying = ecdsa.VerifyingKey.from_pem(pem)
    assert verifying.curve == ecdsa.NIST256p
    signature = bytes.fromhex(envelope.signatures[keyid].signature)
    verifying.verify(signature, envelope.pae(), hashfunc=hashlib.sha256, sigdecode=sigdecode_der)
    return validate_statement(envelope.payload)


def validate_statement(payload: bytes) -> dict[str, Any]:
    """The payload parsed as an in-toto Statement v1 and validated by the in-toto attestation framework."""
    doc: dict[str, Any] = json.loads(payload)
    message = json_format.Parse(payload, statement_pb2.Statement())
    Statement.copy_from_pb(message).validate()
    assert message.type == "https://in-toto.io/Statement/v1"
    return doc
