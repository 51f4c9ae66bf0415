"""Pushes through the edge land in the primary: monolithic and chunked uploads, manifests, the primary's errors,
aborted bodies, and a primary with auth on (the client's credentials are forwarded)."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from edge.push import rewrite_location
from tests.api.conftest import CHEAP_ARGON2
from tests.e2e.clients import Skopeo
from tests.edge.conftest import EdgeFactory
from tests.edge.ocipush import push_blob, unique_repo
from tests.imagebuild import OCI_CONFIG, OCI_MANIFEST, BuiltImage, build_image, sha256
from tests.serverproc import RegistryProcess

Auth = tuple[str, str] | None


def _manifest(config: bytes, layer: bytes) -> bytes:
    return (
        b'{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%d},'
        b'"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}'
    ) % (
        OCI_MANIFEST.encode(),
        OCI_CONFIG.encode(),
        sha256(config).encode(),
        len(config),
        sha256(layer).encode(),
        len(layer),
    )


def _chunked_upload(client: httpx.Client, repo: str, data: bytes, pieces: int, ns: str | None = None) -> str:
    """POST, ``pieces`` PATCHes following each ``Location``, PUT ?digest= — all through ``client`` (the edge)."""
    params = {"ns": ns} if ns else {}
    started = client.post(f"/v2/{repo}/blobs/uploads/", params=params)
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    assert location.startswith("/v2/"), location  # a path on the edge, never the primary's address
    if ns:
        assert parse_qs(urlsplit(location).query)["ns"] == [ns]
    assert started.headers.get("docker-upload-uuid")
    step = -(-len(data) // pieces)
    for offset in range(0, len(data), step):
        piece = data[offset : offset + step]
        headers = {"Content-Range": f"{offset}-{offset + len(piece) - 1}", "Content-Type": "application/octet-stream"}
        patched = client.patch(location, content=piece, headers=headers)
        assert patched.status_code == 202, patched.text
        assert patched.headers["range"] == f"0-{offset + len(piece) - 1}"
        location = patched.headers["location"]
    digest = sha256(data)
    done = client.put(location, params={"digest": digest})
    assert done.status_code == 201, done.text
    assert done.headers["docker-content-digest"] == digest
    return digest


def _push_and_pull_back(edge_url: str, primary_url: str, auth: Auth, ns: str | None = None) -> None:
    """Push an image through the edge; pull it back from the primary and (open primary only: the edge cannot
    authenticate upstream yet) through the edge."""
    repo = unique_repo("push")
    config = (
        b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' + os.urandom(8).hex().encode()
    )
    layer = os.urandom(3 * 1024 * 1024 + 17)
    with (
        httpx.Client(base_url=edge_url, auth=auth, timeout=60) as edge,
        httpx.Client(base_url=primary_url, auth=auth, timeout=60) as primary,
    ):
        monolithic = edge.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(config)}, content=config)
        assert monolithic.status_code == 201, monolithic.text
        assert _chunked_upload(edge, repo, layer, 3, ns) == sha256(layer)
        doc = _manifest(config, layer)
        put = edge.put(f"/v2/{repo}/manifests/v1", content=doc, headers={"Content-Type": OCI_MANIFEST})
        assert put.status_code == 201, put.text
        assert put.headers["location"].startswith("/v2/")
        for client in (primary, edge) if auth is None else (primary,):
            got = client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
            assert got.status_code == 200 and got.content == doc
            assert got.headers["docker-content-digest"] == sha256(doc)
            assert client.get(f"/v2/{repo}/blobs/{sha256(layer)}").content == layer
            assert client.get(f"/v2/{repo}/blobs/{sha256(config)}").content == config

        # a new manifest for the same tag, pushed through the edge: the edge's cached tag is dropped, not served
        config2 = config + b" "
        assert (
            edge.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(config2)}, content=config2).status_code
            == 201
        )
        doc2 = _manifest(config2, layer)
        assert (
            edge.put(f"/v2/{repo}/manifests/v1", content=doc2, headers={"Content-Type": OCI_MANIFEST}).status_code
            == 201
        )
        again = (edge if auth is None else primary).get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert again.status_code == 200 and again.headers["docker-content-digest"] == sha256(doc2)

        # a mount from another repository through the edge
        other = unique_repo("mount")
        mounted = edge.post(f"/v2/{other}/blobs/uploads/", params={"mount": sha256(layer), "from": repo})
        assert mounted.status_code == 201, mounted.text
        assert primary.head(f"/v2/{other}/blobs/{sha256(layer)}").status_code == 200


def test_httpx_push_through_edge_lands_in_primary(primary: RegistryProcess, make_edge: EdgeFactory) -> None:
    edge = make_edge(primary.url)
    _push_and_pull_back(edge.url, primary.url, None)
    _push_and_pull_back(edge.url, primary.url, None, ns=primary.host)
    assert edge.stats()["fills_in_flight"] == 0


def test_out_of_order_chunk_gets_the_primarys_416(primary: RegistryProcess, make_edge: EdgeFactory) -> None:
    edge = make_edge(primary.url)
    repo = unique_repo("range")
    with httpx.Client(base_url=edge.url, timeout=60) as client:
        started = client.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202
        first = client.patch(started.headers["location"], content=b"a" * 100, headers={"Content-Range": "0-99"})
        assert first.status_code == 202
        skipped = client.patch(first.headers["location"], content=b"b" * 100, headers={"Content-Range": "200-299"})
        assert skipped.status_code == 416, skipped.text
        assert skipped.json()["errors"][0]["code"] in ("BLOB_UPLOAD_INVALID", "RANGE_INVALID", "SIZE_INVALID")
        missing = client.get(f"/v2/{repo}/blobs/{sha256(b'x')}")
        assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "BLOB_UNKNOWN"


def _send_partial(url: str, method: str, target: str, total: int, sent: int) -> None:
    """Send a request head announcing ``total`` body bytes, ``sent`` of them, then drop the connection."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=30) as sock:
        head = f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {total}\r\n"
        sock.sendall(head.encode() + b"Content-Type: application/octet-stream\r\n\r\n")
        sock.sendall(os.urandom(sent))
        time.sleep(0.5)


def test_upload_aborted_mid_body_leaves_nothing(primary: RegistryProcess, make_edge: EdgeFactory) -> None:
    edge = make_edge(primary.url)
    repo = unique_repo("abort")
    data = os.urandom(4 * 1024 * 1024)
    digest = sha256(data)
    _send_partial(edge.url, "POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", len(data), 1024 * 1024)
    with httpx.Client(base_url=edge.url, timeout=60) as client:
        started = client.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202
        location = started.headers["location"]
        _send_partial(
            edge.url,
            "PUT",
            f"{location}&digest={digest}" if "?" in location else f"{location}?digest={digest}",
            len(data),
            2 * 1024 * 1024,
        )
        time.sleep(1)
        assert httpx.head(f"{primary.url}/v2/{repo}/blobs/{digest}", timeout=30).status_code == 404
        assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
        status = client.get(location)  # the upload session is still there, with nothing (complete) in it
        assert status.status_code in (204, 404), status.text
    stats = edge.stats()
    assert stats["cache_blobs"] == 0 and stats["fills_in_flight"] == 0
    push_blob(edge.url, repo, data)  # the same blob pushed whole afterwards works
    assert httpx.get(f"{primary.url}/v2/{repo}/blobs/{digest}", timeout=60).content == data


@pytest.fixture(scope="module")
def skopeo(tmp_path_factory: pytest.TempPathFactory) -> Skopeo:
    return Skopeo(tmp_path_factory.mktemp("skopeo"))


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    return build_image(tmp_path_factory.mktemp("layout") / "image", text="pushed through the edge\n", tag="v1")


@pytest.fixture(scope="module")
def auth_primary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RegistryProcess, tuple[str, str]]]:
    data = tmp_path_factory.mktemp("edge-auth-primary") / "data"
    with RegistryProcess(data, "--auth", "token", env=CHEAP_ARGON2) as proc:
        stored = json.loads((proc.data / "admin-credential.json").read_text())
        created = httpx.post(
            f"{proc.url}/api/v1/namespaces", json={"name": "edge"}, auth=(stored["username"], stored["password"])
        )
        assert created.status_code == 201, created.text
        yield proc, (stored["username"], stored["password"])


def test_push_with_basic_credentials_through_edge(
    auth_primary: tuple[RegistryProcess, tuple[str, str]], make_edge: EdgeFactory
) -> None:
    proc, admin = auth_primary
    edge = make_edge(proc.url)
    refused = httpx.post(f"{edge.url}/v2/{unique_repo('noauth')}/blobs/uploads/", timeout=30)
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert "www-authenticate" in refused.headers
    _push_and_pull_back(edge.url, proc.url, admin)


def test_skopeo_copy_through_edge(
    primary: RegistryProcess, make_edge: EdgeFactory, skopeo: Skopeo, image: BuiltImage, tmp_path: Path
) -> None:
    """skopeo pushes through the edge (its blob HEADs are answered by the edge's pull path, which cannot yet
    authenticate upstream: hence the open primary here; Basic pushes to an auth primary are tested above)."""
    edge = make_edge(primary.url)
    edge_host = edge.url.split("://", 1)[1]
    repo = unique_repo("skopeo")
    skopeo.copy(image.ref, f"docker://{edge_host}/{repo}:v1")
    for host in (primary.host, edge_host):
        assert skopeo.raw(f"docker://{host}/{repo}:v1") == image.manifest
        out = tmp_path / host.replace(":", "_")
        skopeo.copy(f"docker://{host}/{repo}:v1", f"oci:{out}:v1")
        index = json.loads((out / "index.json").read_text())
        assert index["manifests"][0]["digest"] == sha256(image.manifest)
        for blob in [image.config, *image.layers]:
            assert (out / "blobs" / "sha256" / sha256(blob).split(":", 1)[1]).read_bytes() == blob


@pytest.mark.parametrize(
    ("location", "ns", "expected"),
    [
        ("/v2/a/b/blobs/uploads/u1?_state=x", None, "/v2/a/b/blobs/uploads/u1?_state=x"),
        ("http://primary:5000/v2/a/blobs/uploads/u1", None, "/v2/a/blobs/uploads/u1"),
        (
            "http://primary:5000/v2/a/blobs/uploads/u1?s=1",
            "primary:5000",
            "/v2/a/blobs/uploads/u1?s=1&ns=primary%3A5000",
        ),
        ("/v2/a/manifests/sha256:00", "r.example", "/v2/a/manifests/sha256:00?ns=r.example"),
        ("https://bucket.s3.example/obj?sig=1", None, "https://bucket.s3.example/obj?sig=1"),
    ],
)
def test_location_is_rewritten_to_the_edge(location: str, ns: str | None, expected: str) -> None:
    assert rewrite_location(location, "http://primary:5000", ns) == expected


def test_location_under_an_upstream_path_prefix() -> None:
    assert rewrite_location("/reg/v2/a/blobs/uploads/u", "https://h/reg", None) == "/v2/a/blobs/uploads/u"
