"""oras-py (``oras.client.OrasClient``) against the registry: artifacts with custom media types, chunked pushes,
tags, tag deletion, and artifacts attached to an image (``subject`` / referrers API)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import oras.client  # type: ignore[import-untyped]
import oras.oci  # type: ignore[import-untyped]
import pytest

from tests.e2e.clients import Skopeo, push_image, unique_repo
from tests.imagebuild import OCI_MANIFEST, BuiltImage, sha256
from tests.serverproc import RegistryProcess

pytestmark = pytest.mark.e2e

NOTE_TYPE = "application/vnd.e2e.note.v1+text"
CONFIG_TYPE = "application/vnd.e2e.config.v1+json"
SBOM_TYPE = "application/vnd.e2e.sbom.v1+json"
SIGNATURE_TYPE = "application/vnd.e2e.signature.v1"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
TITLE = "org.opencontainers.image.title"


def client(registry: RegistryProcess) -> oras.client.OrasClient:
    return oras.client.OrasClient(hostname=registry.host, insecure=True)


def test_push_and_pull_artifact(shared_registry: RegistryProcess, tmp_path: Path) -> None:
    repo = unique_repo("oras")
    target = f"{shared_registry.host}/{repo}:v1"
    note = tmp_path / "note.txt"
    note.write_bytes(b"an artifact, not an image\n" * 10)
    config = tmp_path / "config.json"
    config.write_text('{"kind": "note"}')

    pushed = client(shared_registry).push(
        target=target,
        files=[f"{note}:{NOTE_TYPE}"],
        manifest_config=f"{config}:{CONFIG_TYPE}",
        manifest_annotations={"org.example.purpose": "e2e"},
        disable_path_validation=True,
        quiet=True,
    )
    assert pushed.status_code == 201, pushed.text
    manifest_digest = pushed.headers["Docker-Content-Digest"]

    out = tmp_path / "out"
    files = client(shared_registry).pull(target=target, outdir=str(out))
    assert [Path(f).name for f in files] == ["note.txt"]
    assert Path(files[0]).read_bytes() == note.read_bytes()

    manifest = client(shared_registry).get_manifest(target)
    assert manifest["config"]["mediaType"] == CONFIG_TYPE
    assert manifest["config"]["digest"] == sha256(config.read_bytes())
    [layer] = manifest["layers"]
    assert (layer["mediaType"], layer["annotations"][TITLE]) == (NOTE_TYPE, "note.txt")
    assert layer["digest"] == sha256(note.read_bytes())
    assert manifest["annotations"]["org.example.purpose"] == "e2e"
    # The raw API agrees: same digest by tag and by digest, served as an OCI manifest.
    r = httpx.get(f"{shared_registry.url}/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == OCI_MANIFEST
    assert r.headers["Docker-Content-Digest"] == manifest_digest == sha256(r.content)
    config_blob = client(shared_registry).get_blob(target, manifest["config"]["digest"])
    assert config_blob.content == config.read_bytes()


def test_chunked_push_of_a_larger_file(shared_registry: RegistryProcess, tmp_path: Path) -> None:
    repo = unique_repo("oras-chunked")
    target = f"{shared_registry.host}/{repo}:big"
    data = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(40_000))  # 1.25 MiB
    blob = tmp_path / "big.bin"
    blob.write_bytes(data)

    pushed = client(shared_registry).push(
        target=target,
        files=[f"{blob}:application/octet-stream"],
        disable_path_validation=True,
        do_chunked=True,
        chunk_size=256 * 1024,  # five PATCHes, the last one short
        quiet=True,
    )
    assert pushed.status_code == 201, pushed.text
    patches = [
        line
        for line in shared_registry.log_text().splitlines()
        if f'"PATCH /v2/{repo}/blobs/uploads/' in line and '" 202 ' in line
    ]
    assert len(patches) == 5, "expected five accepted PATCH chunks in the access log"

    head = httpx.head(f"{shared_registry.url}/v2/{repo}/blobs/{sha256(data)}")
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == len(data)
    [pulled] = client(shared_registry).pull(target=target, outdir=str(tmp_path / "out"))
    assert Path(pulled).read_bytes() == data


def test_list_and_delete_tags(shared_registry: RegistryProcess, tmp_path: Path) -> None:
    repo = unique_repo("oras-tags")
    name = f"{shared_registry.host}/{repo}"
    oras_client = client(shared_registry)
    for tag in ("v1", "v2", "v3"):
        content = tmp_path / f"{tag}.txt"
        content.write_text(f"release {tag}\n")
        oras_client.push(target=f"{name}:{tag}", files=[str(content)], disable_path_validation=True, quiet=True)

    assert sorted(oras_client.get_tags(name)) == ["v1", "v2", "v3"]
    assert len(oras_client.get_tags(name, N=2)) == 2

    assert oras_client.delete_tag(name, "v2") is True
    assert sorted(oras_client.get_tags(name)) == ["v1", "v3"]
    [pulled] = oras_client.pull(target=f"{name}:v3", outdir=str(tmp_path / "out"))
    assert Path(pulled).read_text() == "release v3\n"


def test_artifacts_attached_to_an_image(
    skopeo: Skopeo, shared_registry: RegistryProcess, image: BuiltImage, tmp_path: Path
) -> None:
    """An SBOM pushed by ``oras push --subject`` and a signature with an explicit ``artifactType`` both show up in
    the referrers API of the image, each with its artifact type, and the ``artifactType`` filter selects one."""
    repo = unique_repo("oras-referrers")
    push_image(skopeo, image, shared_registry, repo, "v1")
    subject = oras.oci.Subject(mediaType=OCI_MANIFEST, digest=image.manifest_digest, size=len(image.manifest))
    oras_client = client(shared_registry)

    sbom = tmp_path / "sbom.json"
    sbom.write_text('{"packages": []}')
    sbom_config = tmp_path / "sbom-config.json"
    sbom_config.write_text("{}")
    r = oras_client.push(
        target=f"{shared_registry.host}/{repo}:sbom",
        files=[f"{sbom}:application/json"],
        manifest_config=f"{sbom_config}:{SBOM_TYPE}",
        subject=subject,
        disable_path_validation=True,
        quiet=True,
    )
    assert r.status_code == 201, r.text
    sbom_digest = r.headers["Docker-Content-Digest"]

    # A manifest with artifactType, an empty config and the subject, through oras' lower-level calls.
    signature = tmp_path / "sig.bin"
    signature.write_bytes(b"not really a signature")
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    container = oras_client.get_container(f"{shared_registry.host}/{repo}:sig")
    layer = oras.oci.NewLayer(str(signature), media_type=SIGNATURE_TYPE)
    config = {"mediaType": EMPTY_TYPE, "digest": sha256(b"{}"), "size": 2}
    for path, desc in ((signature, layer), (empty, config)):
        assert oras_client.upload_blob(str(path), container, desc).status_code in (200, 201)
    sig_manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SIGNATURE_TYPE,
        "config": config,
        "layers": [layer],
        "subject": {"mediaType": OCI_MANIFEST, "digest": image.manifest_digest, "size": len(image.manifest)},
    }
    r = oras_client.upload_manifest(sig_manifest, container)
    assert r.status_code == 201, r.text
    assert r.headers.get("OCI-Subject") == image.manifest_digest
    sig_digest = r.headers["Docker-Content-Digest"]

    url = f"{shared_registry.url}/v2/{repo}/referrers/{image.manifest_digest}"
    r = httpx.get(url)
    assert r.status_code == 200, r.text
    referrers = {d["digest"]: d for d in r.json()["manifests"]}
    assert set(referrers) == {sbom_digest, sig_digest}, json.dumps(r.json(), indent=2)
    assert referrers[sbom_digest]["artifactType"] == SBOM_TYPE  # from config.mediaType: no artifactType field
    assert referrers[sig_digest]["artifactType"] == SIGNATURE_TYPE

    r = httpx.get(url, params={"artifactType": SIGNATURE_TYPE})
    assert r.status_code == 200, r.text
    assert [d["digest"] for d in r.json()["manifests"]] == [sig_digest]
    assert r.headers.get("OCI-Filters-Applied") == "artifactType"
