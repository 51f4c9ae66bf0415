"""Push: every upload flavour, mounts, manifests and their validation."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.ocihelpers import (
    EMPTY_JSON,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    desc,
    digest,
    error_codes,
    image_manifest,
    index,
    push_blob,
    push_image,
    unique_repo,
)


def _start(client: httpx.Client, repo: str) -> str:
    r = client.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    assert r.headers["location"] and r.headers["range"] == "0-0" and r.headers["docker-upload-uuid"]
    assert r.headers["content-length"] == "0"
    return r.headers["location"]


def test_post_then_put(client: httpx.Client) -> None:
    repo = unique_repo()
    data = b"monolithic in two requests"
    location = _start(client, repo)
    r = client.put(
        location, params={"digest": digest(data)}, content=data, headers={"Content-Type": "application/octet-stream"}
    )
    assert r.status_code == 201, r.text
    assert r.headers["location"].endswith(f"/v2/{repo}/blobs/{digest(data)}")
    assert r.headers["docker-content-digest"] == digest(data)
    assert client.get(r.headers["location"]).content == data


def test_single_post(client: httpx.Client) -> None:
    repo = unique_repo()
    data = b"single post"
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest(data)}, content=data)
    assert r.status_code == 201 and r.headers["docker-content-digest"] == digest(data)
    assert r.headers["location"].endswith(f"/v2/{repo}/blobs/{digest(data)}")


def test_chunked_upload_with_status_and_out_of_order_chunk(client: httpx.Client) -> None:
    repo = unique_repo()
    data = bytes(range(256)) * 100
    location = _start(client, repo)
    first, second = data[:10000], data[10000:]
    r = client.patch(
        location,
        content=first,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"0-{len(first) - 1}",
            "Content-Length": str(len(first)),
        },
    )
    assert r.status_code == 202 and r.headers["range"] == f"0-{len(first) - 1}"
    location = r.headers["location"]
    status = client.get(location)
    assert status.status_code == 204 and status.headers["range"] == f"0-{len(first) - 1}"
    assert status.headers["location"] and status.headers["docker-upload-uuid"]
    # Out of order (skips ahead) and repeated chunks: 416 with the stored Range, nothing written.
    for bad_range in (f"{len(first) + 5}-{len(first) + 9}", f"0-{len(first) - 1}"):
        size = int(bad_range.split("-")[1]) - int(bad_range.split("-")[0]) + 1
        r = client.patch(location, content=second[:size], headers={"Content-Range": bad_range})
        assert r.status_code == 416, r.text
        assert r.headers["range"] == f"0-{len(first) - 1}"
        assert error_codes(r) == ["BLOB_UPLOAD_INVALID"]
    r = client.patch(location, content=second, headers={"Content-Range": f"{len(first)}-{len(data) - 1}"})
    assert r.status_code == 202 and r.headers["range"] == f"0-{len(data) - 1}"
    r = client.put(r.headers["location"], params={"digest": digest(data)})
    assert r.status_code == 201, r.text
    assert client.get(f"/v2/{repo}/blobs/{digest(data)}").content == data


def test_streamed_patch_without_content_range_and_final_chunk_on_put(client: httpx.Client) -> None:
    repo = unique_repo()
    data = b"a" * 5000 + b"b" * 5000
    location = _start(client, repo)
    r = client.patch(location, content=data[:6000])
    assert r.status_code == 202 and r.headers["range"] == "0-5999"
    r = client.put(r.headers["location"], params={"digest": digest(data)}, content=data[6000:])
    assert r.status_code == 201, r.text
    assert client.get(f"/v2/{repo}/blobs/{digest(data)}").content == data


def test_content_length_mismatch_keeps_session(client: httpx.Client) -> None:
    repo = unique_repo()
    location = _start(client, repo)
    r = client.patch(location, content=b"12345", headers={"Content-Range": "0-9"})
    assert r.status_code == 400 and error_codes(r) == ["SIZE_INVALID"]
    assert client.get(location).headers["range"] == "0-0"


def test_wrong_digest_is_refused_and_nothing_is_visible(client: httpx.Client) -> None:
    repo = unique_repo()
    data = b"actual bytes"
    claimed = digest(b"other bytes")
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": claimed}, content=data)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    assert client.head(f"/v2/{repo}/blobs/{claimed}").status_code == 404
    assert client.head(f"/v2/{repo}/blobs/{digest(data)}").status_code == 404
    location = _start(client, repo)
    r = client.put(location, params={"digest": claimed}, content=data)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    assert client.head(f"/v2/{repo}/blobs/{claimed}").status_code == 404


def test_put_without_or_with_malformed_digest(client: httpx.Client) -> None:
    repo = unique_repo()
    location = _start(client, repo)
    r = client.put(location, content=b"x")
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    r = client.put(location, params={"digest": "sha256:short"}, content=b"x")
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]


def test_cancel_and_unknown_upload(client: httpx.Client) -> None:
    repo = unique_repo()
    location = _start(client, repo)
    assert client.delete(location).status_code == 204
    r = client.get(location)
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]
    r = client.patch(f"/v2/{repo}/blobs/uploads/not-a-session", content=b"x")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]
    other = unique_repo()
    location = _start(client, repo)
    r = client.get(location.replace(repo, other))
    assert r.status_code == 404, "a session must not be reachable through another repository"


def test_cross_repository_mount(client: httpx.Client) -> None:
    src, dst = unique_repo(), unique_repo()
    data = b"mount me"
    d = push_blob(client, src, data)
    r = client.post(f"/v2/{dst}/blobs/uploads/", params={"mount": d, "from": src})
    assert r.status_code == 201 and r.headers["docker-content-digest"] == d
    assert r.headers["location"].endswith(f"/v2/{dst}/blobs/{d}")
    assert client.get(f"/v2/{dst}/blobs/{d}").content == data
    # Source lacks the blob, or no source: fall back to an upload session.
    r = client.post(f"/v2/{dst}/blobs/uploads/", params={"mount": digest(b"absent"), "from": src})
    assert r.status_code == 202 and "/blobs/uploads/" in r.headers["location"]
    r = client.post(f"/v2/{unique_repo()}/blobs/uploads/", params={"mount": d})
    assert r.status_code == 202


def test_manifest_put_headers_and_location(client: httpx.Client) -> None:
    repo = unique_repo()
    manifest = push_image(client, repo, None)
    r = client.put(f"/v2/{repo}/manifests/latest", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201
    assert r.headers["docker-content-digest"] == digest(manifest)
    assert r.headers["location"].endswith(f"/v2/{repo}/manifests/{digest(manifest)}")
    assert "oci-subject" not in r.headers


def test_manifest_with_unknown_blob(client: httpx.Client) -> None:
    repo = unique_repo()
    config = b"{}"
    push_blob(client, repo, config)
    manifest = image_manifest(config, [b"layer never pushed"])
    r = client.put(f"/v2/{repo}/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
    assert client.get(f"/v2/{repo}/manifests/v1").status_code == 404


def test_index_with_unknown_child(client: httpx.Client) -> None:
    repo = unique_repo()
    idx = index([b'{"not": "pushed"}'])
    r = client.put(f"/v2/{repo}/manifests/v1", content=idx, headers={"Content-Type": OCI_INDEX})
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", OCI_MANIFEST),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode(), OCI_MANIFEST),
        (json.dumps({"schemaVersion": 2, "config": {}, "layers": []}).encode(), OCI_MANIFEST),
    ],
)
def test_invalid_manifests(client: httpx.Client, body: bytes, content_type: str) -> None:
    r = client.put(f"/v2/{unique_repo()}/manifests/v1", content=body, headers={"Content-Type": content_type})
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_INVALID"]


def test_manifest_digest_reference_must_match(client: httpx.Client) -> None:
    repo = unique_repo()
    manifest = push_image(client, repo, None)
    r = client.put(f"/v2/{repo}/manifests/{digest(b'other')}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    r = client.put(
        f"/v2/{repo}/manifests/{digest(manifest, 'sha512')}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 201 and r.headers["docker-content-digest"] == digest(manifest, "sha512")


def test_oversized_manifest_is_413(client: httpx.Client) -> None:
    big = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], "annotations": {"pad": "x" * (4 * 1024 * 1024)}}
    ).encode()
    r = client.put(f"/v2/{unique_repo()}/manifests/big", content=big, headers={"Content-Type": OCI_INDEX})
    assert r.status_code == 413 and error_codes(r) == ["SIZE_INVALID"]


def test_invalid_tag_on_put(client: httpx.Client) -> None:
    repo = unique_repo()
    manifest = push_image(client, repo, None)
    r = client.put(f"/v2/{repo}/manifests/.bad", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and error_codes(r) == ["TAG_INVALID"]


def test_artifact_with_empty_config_and_subject_not_yet_pushed(client: httpx.Client) -> None:
    repo = unique_repo()
    push_blob(client, repo, EMPTY_JSON)
    layer = b"signature payload"
    push_blob(client, repo, layer)
    subject = b'{"pretend": "manifest not pushed yet"}'
    artifact = image_manifest(
        EMPTY_JSON, [layer], subject=subject, artifact_type="application/vnd.example.sig", config_type=OCI_EMPTY
    )
    r = client.put(f"/v2/{repo}/manifests/{digest(artifact)}", content=artifact, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201, r.text
    assert r.headers["oci-subject"] == digest(subject)


def test_nondistributable_layer_is_never_uploaded(client: httpx.Client) -> None:
    repo = unique_repo()
    config = b'{"os":"windows"}'
    push_blob(client, repo, config)
    foreign = desc(
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        b"foreign layer",
        urls=["https://mcr.microsoft.com/blob"],
    )
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc("application/vnd.oci.image.config.v1+json", config),
            "layers": [foreign],
        }
    ).encode()
    r = client.put(f"/v2/{repo}/manifests/win", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201, r.text


def test_docker_schema2_manifest(client: httpx.Client) -> None:
    repo = unique_repo()
    config, layer = b'{"architecture":"amd64"}', b"docker layer"
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": desc("application/vnd.docker.container.image.v1+json", config),
            "layers": [desc("application/vnd.docker.image.rootfs.diff.tar.gzip", layer)],
        }
    ).encode()
    ct = "application/vnd.docker.distribution.manifest.v2+json"
    r = client.put(f"/v2/{repo}/manifests/d1", content=manifest, headers={"Content-Type": ct})
    assert r.status_code == 201, r.text
    got = client.get(f"/v2/{repo}/manifests/d1")
    assert got.headers["content-type"] == ct and got.content == manifest


def test_out_of_order_final_chunk_on_put_is_416(client: httpx.Client) -> None:
    repo = unique_repo()
    data = bytes(range(256)) * 8
    location = _start(client, repo)
    r = client.patch(location, content=data[:1024], headers={"Content-Range": "0-1023"})
    assert r.status_code == 202
    location = r.headers["location"]
    bad = client.put(
        location,
        params={"digest": digest(data)},
        content=data[1030:],
        headers={"Content-Range": f"1030-{len(data) - 1}"},
    )
    assert bad.status_code == 416 and bad.headers["range"] == "0-1023"
    status = client.get(location)
    assert status.status_code == 204 and status.headers["range"] == "0-1023"
    good = client.put(
        location,
        params={"digest": digest(data)},
        content=data[1024:],
        headers={"Content-Range": f"1024-{len(data) - 1}"},
    )
    assert good.status_code == 201, good.text
    assert client.get(good.headers["location"]).content == data


def test_deleted_blob_can_be_pushed_again(client: httpx.Client) -> None:
    repo = unique_repo()
    d = push_blob(client, repo, b"again and again")
    assert client.delete(f"/v2/{repo}/blobs/{d}").status_code == 202
    assert client.head(f"/v2/{repo}/blobs/{d}").status_code == 404
    push_blob(client, repo, b"again and again")
    assert client.get(f"/v2/{repo}/blobs/{d}").content == b"again and again"


def test_early_error_does_not_block_a_large_body(client: httpx.Client) -> None:
    """A refused upload (wrong repository name) answers promptly even while the client is still sending."""
    big = b"x" * (12 * 1024 * 1024)
    r = client.post("/v2/BAD/blobs/uploads/", params={"digest": digest(big)}, content=big)
    assert r.status_code in (400, 401)
