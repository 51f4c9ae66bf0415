"""Pull: /v2/, manifests and blobs by tag and digest, Range, and the errors around them."""

from __future__ import annotations

import httpx

from tests.api.ocihelpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    digest,
    error_codes,
    index,
    push_blob,
    push_image,
    unique_repo,
)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def test_base_endpoint(client: httpx.Client) -> None:
    r = client.get("/v2/")
    assert r.status_code == 200 and r.headers["docker-distribution-api-version"] == "registry/2.0"
    assert client.get("/v2").status_code == 200


def test_manifest_by_tag_and_digest_byte_for_byte(client: httpx.Client) -> None:
    repo = unique_repo()
    manifest = push_image(client, repo, "v1")
    for ref in ("v1", digest(manifest)):
        r = client.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200
        assert r.content == manifest  # stored and served exactly as pushed (indent kept)
        assert r.headers["content-type"] == OCI_MANIFEST
        assert r.headers["docker-content-digest"] == digest(manifest)
        assert r.headers["content-length"] == str(len(manifest))
        head = client.head(f"/v2/{repo}/manifests/{ref}")
        assert head.status_code == 200 and head.headers["content-length"] == str(len(manifest))
        assert head.headers["docker-content-digest"] == digest(manifest)


def test_manifest_served_whatever_accept_says(client: httpx.Client) -> None:
    repo = unique_repo()
    manifest = push_image(client, repo, "v1")
    # containers/image style: one Accept header per type, none of them the stored type.
    r = client.get(
        f"/v2/{repo}/manifests/v1",
        headers=[("Accept", DOCKER_MANIFEST), ("Accept", "application/vnd.docker.distribution.manifest.list.v2+json")],
    )
    assert r.status_code == 200 and r.content == manifest and r.headers["content-type"] == OCI_MANIFEST


def test_unknown_manifest_and_blob(client: httpx.Client) -> None:
    repo = unique_repo()
    push_image(client, repo, "v1")
    r = client.get(f"/v2/{repo}/manifests/nope")
    assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]
    r = client.get(f"/v2/{repo}/manifests/{digest(b'nothing')}")
    assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]
    r = client.get(f"/v2/{repo}/blobs/{digest(b'nothing')}")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]
    assert client.head(f"/v2/{repo}/blobs/{digest(b'nothing')}").status_code == 404


def test_blob_get_head(client: httpx.Client) -> None:
    repo = unique_repo()
    data = b"0123456789" * 1000
    d = push_blob(client, repo, data)
    r = client.get(f"/v2/{repo}/blobs/{d}")
    assert r.status_code == 200 and r.content == data and r.headers["docker-content-digest"] == d
    head = client.head(f"/v2/{repo}/blobs/{d}")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    assert head.headers["docker-content-digest"] == d


def test_blob_range_requests(client: httpx.Client) -> None:
    repo = unique_repo()
    data = bytes(range(256)) * 40
    d = push_blob(client, repo, data)
    r = client.get(f"/v2/{repo}/blobs/{d}", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(data)}" and r.headers["content-length"] == "10"
    r = client.get(f"/v2/{repo}/blobs/{d}", headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == data[-5:]
    r = client.get(f"/v2/{repo}/blobs/{d}", headers={"Range": "bytes=10000-20000"})  # end clamped
    assert r.status_code == 206 and r.content == data[10000:]
    assert r.headers["content-range"] == f"bytes 10000-{len(data) - 1}/{len(data)}"
    for unsatisfiable in (f"bytes={len(data)}-", "bytes=500-0", f"bytes={len(data) + 10}-{len(data) + 99}"):
        r = client.get(f"/v2/{repo}/blobs/{d}", headers={"Range": unsatisfiable})
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(data)}", unsatisfiable


def test_blob_is_scoped_to_its_repository(client: httpx.Client) -> None:
    a, b = unique_repo(), unique_repo()
    d = push_blob(client, a, b"only in a")
    assert client.get(f"/v2/{a}/blobs/{d}").status_code == 200
    r = client.get(f"/v2/{b}/blobs/{d}")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]


def test_sha512_blob(client: httpx.Client) -> None:
    repo = unique_repo()
    data = b"sha512 content"
    d = digest(data, "sha512")
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": d}, content=data)
    assert r.status_code == 201 and r.headers["docker-content-digest"] == d
    got = client.get(f"/v2/{repo}/blobs/{d}")
    assert got.status_code == 200 and got.content == data


def test_index_pull(client: httpx.Client) -> None:
    repo = unique_repo()
    m1 = push_image(client, repo, None)
    m2 = push_image(client, repo, None)
    idx = index([m1, m2])
    r = client.put(f"/v2/{repo}/manifests/multi", content=idx, headers={"Content-Type": OCI_INDEX})
    assert r.status_code == 201, r.text
    got = client.get(f"/v2/{repo}/manifests/multi")
    assert got.content == idx and got.headers["content-type"] == OCI_INDEX


def test_invalid_names_and_digests(client: httpx.Client) -> None:
    r = client.get("/v2/Bad_Name/manifests/latest")
    assert r.status_code == 400 and error_codes(r) == ["NAME_INVALID"]
    repo = unique_repo()
    r = client.get(f"/v2/{repo}/blobs/sha256:xyz")
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    r = client.get(f"/v2/{repo}/manifests/sha256:1234")
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    # A string that cannot be a tag names nothing: 404, as the conformance suite expects (PUT says 400).
    for method in ("GET", "HEAD", "DELETE"):
        r = client.request(method, f"/v2/{repo}/manifests/.INVALID_MANIFEST_NAME")
        assert r.status_code == 404, method
    r = client.get(f"/v2/{repo}/manifests/-bad-tag")
    assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]
    r = client.get(f"/v2/{repo}/../etc/blobs/sha256:" + "0" * 64)
    assert r.status_code in (400, 401, 404)
    assert r.headers["content-type"] == "application/json" and error_codes(r)


def test_unknown_routes_and_methods(client: httpx.Client) -> None:
    repo = unique_repo()
    r = client.get(f"/v2/{repo}/nothing")
    assert r.status_code == 404 and error_codes(r) == ["NOT_FOUND"]
    r = client.post(f"/v2/{repo}/manifests/latest")
    assert r.status_code == 405 and error_codes(r) == ["UNSUPPORTED"]
