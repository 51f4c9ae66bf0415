"""Signed audit checkpoints, written outside the database.

On-disk layout under ``<data>/audit/``::

    checkpoint-key.pem   Ed25519 private key (mode 0600), used for audit checkpoints and nothing else
    keys.jsonl           public-key history: {"kid", "public_key" (base64 raw), "created"} per line;
                         old keys stay listed so old checkpoints remain verifiable after a rotation
    checkpoints.jsonl    one signed line per checkpoint:
                         {"type": "head", "size": <last id>, "head": <hash>, "at", "kid", "sig"}
                         {"type": "prune", "first": <first kept id>, "prev": <its prev hash>, …}

A checkpoint is written whenever the chain head moved, every ``audit.checkpoint_interval_seconds`` while
the server runs, at shutdown, and after each CLI command that writes audit records. Records appended after
the newest checkpoint can be cut off without detection: that window is the checkpoint interval.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registry.audit import chain

KEY_FILE = "checkpoint-key.pem"
KEYS_FILE = "keys.jsonl"
CHECKPOINTS_FILE = "checkpoints.jsonl"


def audit_dir(data: Path) -> Path:
    return data / "audit"


def _kid(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _append_line(path: Path, doc: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(doc, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def payload(doc: dict[str, Any]) -> bytes:
    """The signed bytes of a checkpoint line: every field but ``sig``, canonical JSON."""
    body = {k: v for k, v in doc.items() if k != "sig"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_public_keys(directory: Path) -> dict[str, Ed25519PublicKey]:
    keys = {}
    for doc in read_lines(directory / KEYS_FILE):
        keys[str(doc["kid"])] = Ed25519PublicKey.from_public_bytes(base64.b64decode(doc["public_key"]))
    return keys


def signature_valid(doc: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> bool:
    key = keys.get(str(doc.get("kid", "")))
    if key is None:
        return False
    try:
        key.verify(base64.b64decode(str(doc.get("sig", ""))), payload(doc))
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass
class Checkpointer:
    """Signs and appends checkpoints (blocking; call from a worker thread)."""

    directory: Path
    _key: Ed25519PrivateKey | None = None
    _last: tuple[int, str] | None = None

    def key(self) -> Ed25519PrivateKey:
        """The signing key, created (and its public half recorded in ``keys.jsonl``) on first use."""
        if self._key is not None:
            return self._key
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.directory / KEY_FILE
        if path.exists():
            loaded = serialization.load_pem_private_key(path.read_bytes(), None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise ValueError(f"{path} is not an Ed25519 key")
            self._key = loaded
        else:
            self._key = self.rotate()
        return self._key

    def rotate(self) -> Ed25519PrivateKey:
        """A new signing key; the old public key stays in ``keys.jsonl``."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path = self.directory / KEY_FILE
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        public = key.public_key()
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        _append_line(
            self.directory / KEYS_FILE,
            {"kid": _kid(public), "public_key": base64.b64encode(raw).decode(), "created": time.time()},
        )
        os.replace(tmp, path)
        self._key = key
        return key

    def sign_and_append(self, doc: dict[str, Any]) -> dict[str, Any]:
        key = self.key()
        doc = {**doc, "at": time.time(), "kid": _kid(key.public_key())}
        doc["sig"] = base64.b64encode(key.sign(payload(doc))).decode()
        _append_line(self.directory / CHECKPOINTS_FILE, doc)
        return doc

    def checkpoint(self, conn: sqlite3.Connection) -> bool:
        """Append a ``head`` checkpoint if the chain head moved since the last one. Returns whether it did."""
        size, head = chain.head(conn)
        if size == 0 or self._last == (size, head):
            return False
        if self._last is None:
            existing = [d for d in read_lines(self.directory / CHECKPOINTS_FILE) if d.get("type") == "head"]
            if existing and (existing[-1].get("size"), existing[-1].get("head")) == (size, head):
                self._last = (size, head)
                return False
        self.sign_and_append({"type": "head", "size": size, "head": head})
        self._last = (size, head)
        return True
