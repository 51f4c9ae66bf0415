"""Content discovery: tags list and catalog pagination, referrers."""

from __future__ import annotations

import httpx

from tests.api.ocihelpers import (
    EMPTY_JSON,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    digest,
    error_codes,
    image_manifest,
    push_blob,
    push_image,
    unique_repo,
)


def test_tags_list_and_pagination(client: httpx.Client) -> None:
    repo = unique_repo()
    manifest = push_image(client, repo, None)
    tags = ["v3", "latest", "v1", "v2", "a"]
    for tag in tags:
        r = client.put(f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 201
    r = client.get(f"/v2/{repo}/tags/list")
    assert r.status_code == 200 and r.json() == {"name": repo, "tags": sorted(tags)}
    assert "link" not in r.headers
    r = client.get(f"/v2/{repo}/tags/list", params={"n": 2})
    assert r.json()["tags"] == ["a", "latest"]
    assert r.headers["link"] == f'</v2/{repo}/tags/list?n=2&last=latest>; rel="next"'
    r = client.get(r.headers["link"].split(";")[0].strip("<>"))
    assert r.json()["tags"] == ["v1", "v2"]
    r = client.get(f"/v2/{repo}/tags/list", params={"n": 2, "last": "v2"})
    assert r.json()["tags"] == ["v3"] and "link" not in r.headers
    r = client.get(f"/v2/{repo}/tags/list", params={"n": 0})
    assert r.status_code == 200 and r.json()["tags"] == []
    r = client.get(f"/v2/{repo}/tags/list", params={"n": "x"})
    assert r.status_code == 400 and error_codes(r) == ["PAGINATION_NUMBER_INVALID"]


def test_tags_list_of_unknown_repository(client: httpx.Client) -> None:
    r = client.get(f"/v2/{unique_repo()}/tags/list")
    assert r.status_code == 404 and error_codes(r) == ["NAME_UNKNOWN"]


def test_catalog_pagination(client: httpx.Client) -> None:
    prefix = unique_repo("catalog")
    repos = [f"{prefix}/{name}" for name in ("c", "a", "b")]
    for repo in repos:
        push_blob(client, repo, repo.encode())
    everything = client.get("/v2/_catalog", params={"n": 10000}).json()["repositories"]
    assert everything == sorted(everything) and all(r in everything for r in repos)
    r = client.get("/v2/_catalog", params={"n": 1, "last": f"{prefix}/a"})
    assert r.json()["repositories"] == [f"{prefix}/b"]
    assert r.headers["link"].startswith(f"</v2/_catalog?n=1&last={prefix.replace('/', '%2F')}%2Fb>")


def _push_referrer(client: httpx.Client, repo: str, subject: bytes, artifact_type: str, payload: bytes) -> bytes:
    push_blob(client, repo, EMPTY_JSON)
    push_blob(client, repo, payload)
    manifest = image_manifest(
        EMPTY_JSON,
        [payload],
        subject=subject,
        artifact_type=artifact_type,
        config_type=OCI_EMPTY,
        annotations={"org.example.kind": artifact_type},
    )
    r = client.put(f"/v2/{repo}/manifests/{digest(manifest)}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201 and r.headers["oci-subject"] == digest(subject)
    return manifest


def test_referrers(client: httpx.Client) -> None:
    repo = unique_repo()
    subject = push_image(client, repo, "v1")
    sbom = _push_referrer(client, repo, subject, "application/vnd.example.sbom", b"sbom")
    sig = _push_referrer(client, repo, subject, "application/vnd.example.sig", b"sig")
    r = client.get(f"/v2/{repo}/referrers/{digest(subject)}")
    assert r.status_code == 200 and r.headers["content-type"] == OCI_INDEX
    doc = r.json()
    assert doc["schemaVersion"] == 2 and doc["mediaType"] == OCI_INDEX
    by_digest = {m["digest"]: m for m in doc["manifests"]}
    assert set(by_digest) == {digest(sbom), digest(sig)}
    assert by_digest[digest(sbom)] == {
        "mediaType": OCI_MANIFEST,
        "digest": digest(sbom),
        "size": len(sbom),
        "artifactType": "application/vnd.example.sbom",
        "annotations": {"org.example.kind": "application/vnd.example.sbom"},
    }
    r = client.get(f"/v2/{repo}/referrers/{digest(subject)}", params={"artifactType": "application/vnd.example.sig"})
    assert r.headers["oci-filters-applied"] == "artifactType"
    assert [m["digest"] for m in r.json()["manifests"]] == [digest(sig)]


def test_referrers_of_unknown_subject_is_an_empty_index(client: httpx.Client) -> None:
    r = client.get(f"/v2/{unique_repo()}/referrers/{digest(b'nothing')}")
    assert r.status_code == 200 and r.json()["manifests"] == []
    r = client.get(f"/v2/{unique_repo()}/referrers/sha256:bad")
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]


def test_referrer_pushed_before_its_subject(client: httpx.Client) -> None:
    repo = unique_repo()
    config, layer = b'{"a":1}', b"late subject"
    subject = image_manifest(config, [layer])
    ref = _push_referrer(client, repo, subject, "application/vnd.example.early", b"early")
    assert [m["digest"] for m in client.get(f"/v2/{repo}/referrers/{digest(subject)}").json()["manifests"]] == [
        digest(ref)
    ]
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    r = client.put(f"/v2/{repo}/manifests/v1", content=subject, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201
    assert len(client.get(f"/v2/{repo}/referrers/{digest(subject)}").json()["manifests"]) == 1
