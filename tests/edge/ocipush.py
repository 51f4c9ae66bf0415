"""Push helpers for edge tests, straight to the primary's API (monolithic uploads, no client binaries)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from pathlib import Path

import httpx

from tests.imagebuild import OCI_MANIFEST, BuiltImage


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def unique_repo(prefix: str) -> str:
    return f"edge/{prefix}-{uuid.uuid4().hex[:8]}"


def push_blob(base_url: str, repo: str, data: bytes) -> str:
    """Upload ``data`` to ``repo`` in one POST; return its digest."""
    digest = sha256(data)
    response = httpx.post(f"{base_url}/v2/{repo}/blobs/uploads/?digest={digest}", content=data, timeout=120)
    assert response.status_code == 201, response.text
    return digest


def push_manifest(base_url: str, repo: str, tag: str, manifest: bytes, media_type: str = OCI_MANIFEST) -> str:
    response = httpx.put(
        f"{base_url}/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": media_type}, timeout=30
    )
    assert response.status_code == 201, response.text
    return sha256(manifest)


def push_image(base_url: str, repo: str, image: BuiltImage, tag: str) -> None:
    for blob in [image.config, *image.layers]:
        push_blob(base_url, repo, blob)
    push_manifest(base_url, repo, tag, image.manifest)


def push_file(base_url: str, repo: str, path: Path, digest: str) -> None:
    """Upload a large file with curl (much faster than a Python client for hundreds of MiB)."""
    url = f"{base_url}/v2/{repo}/blobs/uploads?digest={digest}"  # no trailing slash: curl -T would append
    proc = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-T", str(path), url],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.stdout == "201", proc.stderr


def random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path``; return their digest."""
    hasher = hashlib.sha256()
    with open(path, "wb") as out:
        for _ in range(0, size, 1 << 24):
            chunk = os.urandom(min(1 << 24, size - out.tell()))
            hasher.update(chunk)
            out.write(chunk)
    return "sha256:" + hasher.hexdigest()
