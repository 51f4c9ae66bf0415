"""An edge in front of a primary serving HTTPS with a private CA (the deploy/ layout: the edge trusts the
primary's CA through ``SSL_CERT_FILE``). Auth mode: none (open primary); what is tested is the TLS trust."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest

from tests.edge.edgeproc import EdgeProcess
from tests.edge.ocipush import push_blob, push_manifest, sha256, unique_repo
from tests.server.tlsutil import make_ca, make_server_cert
from tests.serverproc import RegistryProcess

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _image(base_url: str, repo: str) -> tuple[str, bytes]:
    layer = os.urandom(3 * 1024 * 1024 + 17)  # several pieces through the blocking fill client
    config = b'{"architecture":"amd64","os":"linux"}'
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": push_blob(base_url, repo, config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": push_blob(base_url, repo, layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    push_manifest(base_url, repo, "v1", manifest)
    return sha256(layer), layer


def test_edge_trusts_the_primarys_ca_and_refuses_without_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = make_ca(tmp_path / "pki")
    cert, key = make_server_cert(tmp_path / "pki", ca)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca[0]))  # this test's own httpx pushes trust the CA too
    with RegistryProcess(tmp_path / "data", "--tls-cert", str(cert), "--tls-key", str(key)) as primary:
        assert primary.url.startswith("https://")
        repo = unique_repo("tls/app")
        digest, layer = _image(primary.url, repo)

        trusting = EdgeProcess(tmp_path / "edge", primary.url)
        trusting.env = {"SSL_CERT_FILE": str(ca[0])}
        with trusting, httpx.Client(base_url=trusting.url, timeout=60) as client:
            manifest = client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
            assert manifest.status_code == 200, manifest.text
            blob = client.get(f"/v2/{repo}/blobs/{digest}")
            assert blob.status_code == 200 and blob.content == layer
            deadline = time.monotonic() + 30  # the fill is counted once it is verified and committed
            while trusting.stats()["fills"] < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert trusting.stats()["fills"] >= 1

        untrusting = EdgeProcess(tmp_path / "edge-untrusting", primary.url)
        untrusting.env = {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}  # the system CAs only
        with untrusting, httpx.Client(base_url=untrusting.url, timeout=60) as client:
            refused = client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
            assert refused.status_code == 503
            assert refused.json()["errors"][0]["code"] == "UNAVAILABLE"
            assert client.get(f"/v2/{repo}/blobs/{digest}").status_code in (404, 503)
            assert untrusting.stats()["fills"] == 0
