"""Content management: deleting tags, manifests and blobs."""

from __future__ import annotations

import httpx

from tests.api.ocihelpers import OCI_MANIFEST, digest, error_codes, push_blob, push_image, unique_repo


def test_delete_tag_keeps_manifest(client: httpx.Client) -> None:
    repo = unique_repo()
    manifest = push_image(client, repo, "v1")
    client.put(f"/v2/{repo}/manifests/v2", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    r = client.delete(f"/v2/{repo}/manifests/v1")
    assert r.status_code == 202
    assert client.get(f"/v2/{repo}/manifests/v1").status_code == 404
    assert client.get(f"/v2/{repo}/manifests/v2").status_code == 200
    assert client.get(f"/v2/{repo}/manifests/{digest(manifest)}").status_code == 200
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == ["v2"]
    r = client.delete(f"/v2/{repo}/manifests/v1")
    assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]


def test_delete_manifest_by_digest_removes_its_tags(client: httpx.Client) -> None:
    repo = unique_repo()
    manifest = push_image(client, repo, "v1")
    r = client.delete(f"/v2/{repo}/manifests/{digest(manifest)}")
    assert r.status_code == 202
    for ref in ("v1", digest(manifest)):
        r = client.get(f"/v2/{repo}/manifests/{ref}")
        assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == []
    r = client.delete(f"/v2/{repo}/manifests/{digest(manifest)}")
    assert r.status_code == 404


def test_delete_blob(client: httpx.Client) -> None:
    repo, other = unique_repo(), unique_repo()
    d = push_blob(client, repo, b"delete me")
    push_blob(client, other, b"delete me")
    r = client.delete(f"/v2/{repo}/blobs/{d}")
    assert r.status_code == 202
    r = client.get(f"/v2/{repo}/blobs/{d}")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]
    assert client.get(f"/v2/{other}/blobs/{d}").status_code == 200  # content shared, membership not
    r = client.delete(f"/v2/{repo}/blobs/{d}")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]
