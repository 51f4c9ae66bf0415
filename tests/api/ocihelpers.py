"""Small builders for API tests: blobs, image manifests, indexes and artifacts as raw bytes."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
EMPTY_JSON = b"{}"


def digest(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def unique_repo(prefix: str = "conformance") -> str:
    return f"{prefix}/r{uuid.uuid4().hex[:12]}"


def desc(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest(data), "size": len(data), **extra}


def image_manifest(
    config: bytes,
    layers: list[bytes],
    subject: bytes | None = None,
    artifact_type: str | None = None,
    config_type: str = OCI_CONFIG,
    annotations: dict[str, str] | None = None,
) -> bytes:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(config_type, config),
        "layers": [desc(LAYER, layer) for layer in layers],
    }
    if artifact_type:
        doc["artifactType"] = artifact_type
    if subject is not None:
        doc["subject"] = desc(OCI_MANIFEST, subject)
    if annotations:
        doc["annotations"] = annotations
    return json.dumps(doc, indent=2).encode()


def index(manifests: list[bytes]) -> bytes:
    return json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [desc(OCI_MANIFEST, m) for m in manifests]}
    ).encode()


def push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    d = digest(data)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": d}, content=data)
    assert r.status_code == 201, r.text
    return d


def push_image(
    client: httpx.Client,
    repo: str,
    tag: str | None,
    layers: list[bytes] | None = None,
    config: bytes = b'{"architecture":"amd64","os":"linux"}',
) -> bytes:
    layers = layers if layers is not None else [uuid.uuid4().bytes * 64]
    push_blob(client, repo, config)
    for layer in layers:
        push_blob(client, repo, layer)
    manifest = image_manifest(config, layers)
    r = client.put(
        f"/v2/{repo}/manifests/{tag or digest(manifest)}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 201, r.text
    return manifest


def error_codes(response: httpx.Response) -> list[str]:
    body = response.json()
    assert isinstance(body.get("errors"), list) and body["errors"], body
    return [err["code"] for err in body["errors"]]
