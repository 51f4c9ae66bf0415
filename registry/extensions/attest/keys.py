"""The attestation signing key: ECDSA P-256, separate from the token and audit keys, with a public history.

Layout under ``<data>/attestation/``: ``key-<keyid>.pem`` (private, mode 0600), ``current`` (the keyid in
use) and ``public-keys.json`` (every key ever used: keyid, algorithm, PEM, created, retired). Rotation adds a
key and retires the old one; retired public keys stay published so old attestations still verify.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

ALGORITHM = "ecdsa-p256-sha256"


def key_id(public: ec.EllipticCurvePublicKey) -> str:
    """sha256 of the DER SubjectPublicKeyInfo, hex."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def public_pem(public: ec.EllipticCurvePublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass(frozen=True)
class Signer:
    keyid: str
    private: ec.EllipticCurvePrivateKey

    def sign(self, message: bytes) -> bytes:
        """ECDSA P-256 over SHA-256, DER-encoded (what cosign and sigstore expect)."""
        return self.private.sign(message, ec.ECDSA(hashes.SHA256()))


class AttestationKeys:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def history_path(self) -> Path:
        return self.directory / "public-keys.json"

    def history(self) -> list[dict[str, Any]]:
        if not self.history_path.exists():
            return []
        doc = json.loads(self.history_path.read_text())
        return list(doc.get("keys", []))

    def _write_private(self, key: ec.EllipticCurvePrivateKey, keyid: str) -> None:
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path = self.directory / f"key-{keyid}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)

    def _write_history(self, keys: list[dict[str, Any]]) -> None:
        tmp = self.history_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"keys": keys}, indent=2) + "\n")
        os.replace(tmp, self.history_path)

    def rotate(self) -> str:
        """Create a new key, make it current and retire the previous one. Returns the new keyid."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        keyid = key_id(key.public_key())
        self._write_private(key, keyid)
        now = time.time()
        keys = self.history()
        for entry in keys:
            entry.setdefault("retired", None)
            if entry["retired"] is None:
                entry["retired"] = now
        keys.append(
            {
                "keyid": keyid,
                "algorithm": ALGORITHM,
                "public_key": public_pem(key.public_key()),
                "created": now,
                "retired": None,
            }
        )
        self._write_history(keys)
        (self.directory / "current").write_text(keyid + "\n")
        return keyid

    def signer(self) -> Signer:
        """The current signing key, created on first use."""
        current = self.directory / "current"
        if not current.exists():
            self.rotate()
        keyid = current.read_text().strip()
        pem = (self.directory / f"key-{keyid}.pem").read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("attestation key is not an ECDSA key")
        return Signer(keyid, key)

    def public_keys(self) -> dict[str, ec.EllipticCurvePublicKey]:
        """Every published key (current and retired) by keyid."""
        out = {}
        for entry in self.history():
            key = serialization.load_pem_public_key(entry["public_key"].encode())
            if isinstance(key, ec.EllipticCurvePublicKey):
                out[entry["keyid"]] = key
        return out
