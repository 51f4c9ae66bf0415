"""skopeo against the registry: push from an OCI layout, inspect, list tags, pull back, copy, delete, multi-arch."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.e2e.clients import Skopeo, get_blob, layout_blob, push_image, requests_logged, unique_repo
from tests.imagebuild import OCI_INDEX, OCI_MANIFEST, BuiltImage, BuiltIndex, build_image, layer_files, sha256
from tests.serverproc import RegistryProcess

pytestmark = pytest.mark.e2e

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"


def test_push_inspect_and_list_tags(
    skopeo: Skopeo, shared_registry: RegistryProcess, image: BuiltImage, tmp_path: Path
) -> None:
    repo = unique_repo("push")
    digestfile = tmp_path / "digest"
    ref = f"docker://{shared_registry.host}/{repo}:v1"
    skopeo.copy(image.ref, ref, "--digestfile", str(digestfile))
    assert digestfile.read_text().strip() == image.manifest_digest

    info = skopeo.inspect(ref)
    assert info["Digest"] == image.manifest_digest
    assert info["Layers"] == image.layer_digests
    assert (info["Architecture"], info["Os"]) == ("amd64", "linux")
    assert info["RepoTags"] == ["v1"]
    # The registry serves the manifest and the config byte for byte as pushed.
    assert skopeo.raw(ref) == image.manifest
    assert skopeo.raw(ref, "--config") == image.config

    # A second tag on the same manifest, then one on another image: both listed, each resolving to its own digest.
    skopeo.copy(ref, f"docker://{shared_registry.host}/{repo}:latest")
    other = build_image(tmp_path / "other", text="another image\n", layer_count=1, tag="x")
    push_image(skopeo, other, shared_registry, repo, "2.0")
    assert sorted(skopeo.tags(f"docker://{shared_registry.host}/{repo}")) == ["2.0", "latest", "v1"]
    assert skopeo.inspect(f"docker://{shared_registry.host}/{repo}:latest")["Digest"] == image.manifest_digest
    assert skopeo.inspect(f"docker://{shared_registry.host}/{repo}:2.0")["Digest"] == other.manifest_digest
    by_digest = skopeo.inspect(f"docker://{shared_registry.host}/{repo}@{other.manifest_digest}")
    assert by_digest["Layers"] == other.layer_digests


def test_pull_back_to_oci_layout(
    skopeo: Skopeo, shared_registry: RegistryProcess, image: BuiltImage, tmp_path: Path
) -> None:
    repo = unique_repo("roundtrip")
    ref = push_image(skopeo, image, shared_registry, repo, "v1")
    out = tmp_path / "pulled"
    skopeo.copy(ref, f"oci:{out}:copy")

    index = json.loads((out / "index.json").read_text())
    [entry] = index["manifests"]
    assert entry["digest"] == image.manifest_digest
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "copy"
    assert layout_blob(out, image.manifest_digest) == image.manifest
    assert layout_blob(out, image.config_digest) == image.config
    for digest, data in zip(image.layer_digests, image.layers, strict=True):
        assert layout_blob(out, digest) == data, f"layer {digest} differs after the round trip"
    assert layer_files(layout_blob(out, image.layer_digests[0])) == {"hello.txt": b"hello from e2e\n"}


def test_copy_between_repositories(skopeo: Skopeo, shared_registry: RegistryProcess, image: BuiltImage) -> None:
    src_repo, dest_repo = unique_repo("src"), unique_repo("dest")
    src = push_image(skopeo, image, shared_registry, src_repo, "v1")
    dest = f"docker://{shared_registry.host}/{dest_repo}:copied"
    skopeo.copy(src, dest)

    info = skopeo.inspect(dest)
    assert info["Digest"] == image.manifest_digest
    assert info["Layers"] == image.layer_digests
    assert skopeo.raw(dest) == image.manifest
    # skopeo knows the layers are in the source repository and mounts them (POST answered 201) ...
    mounts = requests_logged(shared_registry, "POST", f"/v2/{dest_repo}/blobs/uploads/", 201)
    assert len(mounts) == len(image.layers), "expected one cross-repository mount per layer"
    # ... every blob is served from the destination repository ...
    for digest, data in zip(image.layer_digests, image.layers, strict=True):
        assert get_blob(shared_registry.url, dest_repo, digest) == data
    assert get_blob(shared_registry.url, dest_repo, image.config_digest) == image.config
    # ... and the source is untouched.
    assert skopeo.inspect(src)["Digest"] == image.manifest_digest
    assert skopeo.tags(f"docker://{shared_registry.host}/{dest_repo}") == ["copied"]


def test_delete_then_inspect_fails(
    skopeo: Skopeo, shared_registry: RegistryProcess, image: BuiltImage, tmp_path: Path
) -> None:
    """``skopeo delete`` deletes the manifest by digest: every tag on it goes, other manifests and repositories stay."""
    repo = unique_repo("delete")
    name = f"docker://{shared_registry.host}/{repo}"
    push_image(skopeo, image, shared_registry, repo, "v1")
    skopeo.copy(f"{name}:v1", f"{name}:alias")
    other = build_image(tmp_path / "other", text="survivor\n", layer_count=1, tag="x")
    push_image(skopeo, other, shared_registry, repo, "other")
    keep = push_image(skopeo, image, shared_registry, unique_repo("keep"), "v1")

    skopeo("delete", "--tls-verify=false", f"{name}:v1")

    for ref in (f"{name}:v1", f"{name}:alias", f"{name}@{image.manifest_digest}"):
        gone = skopeo("inspect", "--tls-verify=false", ref, ok=False)
        assert gone.returncode != 0, f"{ref} still resolves after skopeo delete"
        assert "manifest unknown" in gone.stderr.lower(), gone.stderr
    assert skopeo.tags(name) == ["other"]
    assert skopeo.inspect(f"{name}:other")["Digest"] == other.manifest_digest
    # The same manifest in another repository is untouched, and it can be pushed here again.
    assert skopeo.inspect(keep)["Digest"] == image.manifest_digest
    push_image(skopeo, image, shared_registry, repo, "v1")
    assert skopeo.inspect(f"{name}:v1")["Digest"] == image.manifest_digest
    assert sorted(skopeo.tags(name)) == ["other", "v1"]


def test_multi_arch_copy_all(
    skopeo: Skopeo, shared_registry: RegistryProcess, multiarch: BuiltIndex, tmp_path: Path
) -> None:
    repo = unique_repo("multi")
    ref = push_image(skopeo, multiarch, shared_registry, repo, "v1")

    raw = skopeo.raw(ref)
    assert raw == multiarch.index
    assert json.loads(raw)["mediaType"] == OCI_INDEX
    for platform, child in multiarch.images.items():
        arch = platform.split("/")[1]
        variant = ["--override-variant", child.platform["variant"]] if "variant" in child.platform else []
        info = skopeo.inspect(ref, "--override-arch", arch, *variant)
        assert info["Digest"] == multiarch.index_digest  # skopeo reports the digest of what the tag names
        assert info["Architecture"] == arch, platform
        assert info["Layers"] == child.layer_digests
        by_digest = f"docker://{shared_registry.host}/{repo}@{child.manifest_digest}"
        assert skopeo.raw(by_digest) == child.manifest

    # Pull everything back: the index and both images, byte for byte.
    out = tmp_path / "pulled"
    skopeo.copy(ref, f"oci:{out}:all", "--all")
    assert layout_blob(out, multiarch.index_digest) == multiarch.index
    for child in multiarch.images.values():
        assert layout_blob(out, child.manifest_digest) == child.manifest
        assert layout_blob(out, child.layer_digests[0]) == child.layers[0]
    arm = layer_files(layout_blob(out, multiarch.images["linux/arm64"].layer_digests[0]))
    assert arm["hello.txt"].endswith(b"(arm64)\n")


def test_docker_schema2_conversion(skopeo: Skopeo, shared_registry: RegistryProcess, image: BuiltImage) -> None:
    """``--format v2s2`` stores a Docker schema 2 manifest; the same layers stay addressable and pullable."""
    repo = unique_repo("v2s2")
    ref = f"docker://{shared_registry.host}/{repo}:docker"
    skopeo.copy(image.ref, ref, "--format", "v2s2")

    raw = skopeo.raw(ref)
    manifest = json.loads(raw)
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    assert [layer["digest"] for layer in manifest["layers"]] == image.layer_digests
    info = skopeo.inspect(ref)
    assert info["Digest"] == sha256(raw)
    assert info["Layers"] == image.layer_digests
    config = json.loads(skopeo.raw(ref, "--config"))
    assert config["rootfs"]["diff_ids"] == image.diff_ids
    # Converting back to OCI gives an OCI manifest with the original layers again.
    back = f"docker://{shared_registry.host}/{repo}:oci"
    skopeo.copy(ref, back, "--format", "oci")
    oci = json.loads(skopeo.raw(back))
    assert oci["mediaType"] == OCI_MANIFEST
    assert [layer["digest"] for layer in oci["layers"]] == image.layer_digests


def test_large_layer_round_trip(skopeo: Skopeo, shared_registry: RegistryProcess, tmp_path: Path) -> None:
    """An incompressible 8 MiB layer streams in and out unchanged."""
    big = random.Random(1234).randbytes(8 * 1024 * 1024)
    built = build_image(tmp_path / "big", layers=[{"big.bin": big}, {"small.txt": b"small\n"}], tag="big")
    repo = unique_repo("large")
    ref = push_image(skopeo, built, shared_registry, repo, "big")

    assert skopeo.inspect(ref)["Layers"] == built.layer_digests
    assert get_blob(shared_registry.url, repo, built.layer_digests[0]) == built.layers[0]
    out = tmp_path / "pulled"
    skopeo.copy(ref, f"oci:{out}:big")
    assert layer_files(layout_blob(out, built.layer_digests[0])) == {"big.bin": big}


def test_index_without_its_images_is_rejected(
    skopeo: Skopeo, shared_registry: RegistryProcess, multiarch: BuiltIndex
) -> None:
    """``--multi-arch index-only`` pushes the index alone: the registry refuses an index whose children it lacks."""
    repo = unique_repo("index-only")
    ref = f"docker://{shared_registry.host}/{repo}:v1"
    proc = skopeo("copy", "--dest-tls-verify=false", "--multi-arch", "index-only", multiarch.ref, ref, ok=False)
    assert proc.returncode != 0, "an index referencing missing manifests was accepted"
    assert "manifest blob unknown" in proc.stderr, proc.stderr
    assert skopeo("inspect", "--tls-verify=false", ref, ok=False).returncode != 0
