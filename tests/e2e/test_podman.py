"""podman and buildah against the registry, with vfs storage of their own under the test's temporary directory.

podman reaches the plain-HTTP registry through a private registries.conf marking it ``insecure``; buildah through
``--tls-verify=false``. Neither runs a container, so no cgroups, network or user namespaces are needed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.clients import Skopeo, containers_env, get_blob, need, push_image, run, unique_repo
from tests.imagebuild import BuiltImage, BuiltIndex, layer_files, sha256
from tests.serverproc import RegistryProcess

pytestmark = pytest.mark.e2e


@dataclass
class Storage:
    """A containers-storage (vfs) private to one test, and the environment that points the tools at it."""

    base: Path
    env: dict[str, str]

    def flags(self) -> list[str]:
        return ["--storage-driver", "vfs", "--root", str(self.base / "root"), "--runroot", str(self.base / "runroot")]

    def podman(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [
            need("podman"),
            *self.flags(),
            "--cgroup-manager=cgroupfs",
            "--events-backend=file",
            "--tmpdir",
            str(self.base / "tmp"),
            *args,
        ]
        return run(cmd, env=self.env, ok=ok)

    def buildah(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return run([need("buildah"), *self.flags(), *args], env=self.env, ok=ok)


@contextmanager
def private_storage(registry_host: str, prefix: str = "e2e-containers-") -> Iterator[Storage]:
    """vfs containers-storage and tool config of one test's own, trusting ``registry_host`` over plain HTTP."""
    # Short and under /tmp: podman refuses a runroot longer than 50 characters.
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        env = containers_env(base / "conf", insecure_hosts=[registry_host])
        (base / "conf" / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{base / "root"}"\nrunroot = "{base / "runroot"}"\n'
        )
        env["CONTAINERS_STORAGE_CONF"] = str(base / "conf" / "storage.conf")
        yield Storage(base=base, env=env)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def storage(shared_registry: RegistryProcess) -> Iterator[Storage]:
    with private_storage(shared_registry.host) as store:
        yield store


def inspect_local(storage: Storage, ref: str) -> dict[str, Any]:
    [info] = json.loads(storage.podman("image", "inspect", ref).stdout)
    return info  # type: ignore[no-any-return]


def test_podman_pull_tag_push(
    storage: Storage, skopeo: Skopeo, shared_registry: RegistryProcess, image: BuiltImage
) -> None:
    repo, dest_repo = unique_repo("podman"), unique_repo("podman-pushed")
    push_image(skopeo, image, shared_registry, repo, "v1")
    ref = f"{shared_registry.host}/{repo}:v1"

    storage.podman("pull", "--quiet", ref)

    [listed] = json.loads(storage.podman("images", "--format", "json").stdout)
    assert listed["Names"] == [ref]
    assert listed["Digest"] == image.manifest_digest
    info = inspect_local(storage, ref)
    assert info["Digest"] == image.manifest_digest
    assert info["Id"] == image.config_digest.removeprefix("sha256:")
    assert info["RootFS"]["Layers"] == image.diff_ids
    assert info["Config"]["Cmd"] == ["/hello"]

    dest = f"{shared_registry.host}/{dest_repo}:pushed"
    storage.podman("tag", ref, dest)
    storage.podman("push", dest)

    pushed = skopeo.inspect(f"docker://{dest}")
    assert pushed["Layers"] == image.layer_digests  # podman reuses the registry's compressed layers
    assert json.loads(skopeo.raw(f"docker://{dest}", "--config"))["rootfs"]["diff_ids"] == image.diff_ids
    for digest, data in zip(image.layer_digests, image.layers, strict=True):
        assert get_blob(shared_registry.url, dest_repo, digest) == data
    assert skopeo.tags(f"docker://{shared_registry.host}/{dest_repo}") == ["pushed"]


def test_podman_pull_by_digest_and_platform(
    storage: Storage, skopeo: Skopeo, shared_registry: RegistryProcess, multiarch: BuiltIndex
) -> None:
    repo = unique_repo("podman-multi")
    push_image(skopeo, multiarch, shared_registry, repo, "v1")
    arm = multiarch.images["linux/arm64"]

    storage.podman("pull", "--quiet", "--arch", "arm64", "--variant", "v8", f"{shared_registry.host}/{repo}:v1")
    info = inspect_local(storage, f"{shared_registry.host}/{repo}:v1")
    assert (info["Architecture"], info["Os"]) == ("arm64", "linux")
    assert info["RootFS"]["Layers"] == arm.diff_ids
    name = f"{shared_registry.host}/{repo}"
    assert info["Digest"] == multiarch.index_digest
    assert set(info["RepoDigests"]) == {f"{name}@{multiarch.index_digest}", f"{name}@{arm.manifest_digest}"}

    amd = multiarch.images["linux/amd64"]
    by_digest = f"{shared_registry.host}/{repo}@{amd.manifest_digest}"
    storage.podman("pull", "--quiet", by_digest)
    assert inspect_local(storage, by_digest)["RootFS"]["Layers"] == amd.diff_ids


def test_buildah_from_scratch_commit_push(
    storage: Storage, skopeo: Skopeo, shared_registry: RegistryProcess, tmp_path: Path
) -> None:
    repo = unique_repo("buildah")
    payload = tmp_path / "payload.txt"
    payload.write_bytes(b"built by buildah in an e2e test\n")

    container = storage.buildah("from", "--quiet", "scratch").stdout.strip()
    storage.buildah("copy", container, str(payload), "/payload.txt")
    storage.buildah("config", "--cmd", "/payload.txt", "--label", "e2e=yes", container)
    storage.buildah("commit", "--quiet", container, "localhost/e2e-built:1")
    dest = f"docker://{shared_registry.host}/{repo}:1"
    storage.buildah("push", "--tls-verify=false", "localhost/e2e-built:1", dest)

    info = skopeo.inspect(dest)
    assert info["Labels"]["e2e"] == "yes"
    [layer_digest] = info["Layers"]
    manifest = json.loads(skopeo.raw(dest))
    config_raw = skopeo.raw(dest, "--config")
    assert manifest["config"]["digest"] == sha256(config_raw)
    config = json.loads(config_raw)
    assert config["config"]["Cmd"] == ["/payload.txt"]
    assert len(config["rootfs"]["diff_ids"]) == 1
    # The layer is in the registry and holds the copied file.
    layer = get_blob(shared_registry.url, repo, layer_digest)
    assert layer_files(layer)["payload.txt"] == payload.read_bytes()
    assert get_blob(shared_registry.url, repo, manifest["config"]["digest"]) == config_raw
