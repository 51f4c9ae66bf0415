"""containerd (``ctr``) against the registry: pull and unpack, list, push to another repository, multi-arch.

The module starts its own containerd as root: root, state, opt and socket under temporary directories, the CRI
plugin and the snapshotters that need kernel modules or block devices disabled. Images are unpacked with the
``native`` snapshotter (plain copies), which works wherever containerd runs, overlay-on-overlay included.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.clients import Skopeo, describe, get_blob, need, push_image, requests_logged, run, unique_repo
from tests.imagebuild import BuiltImage, BuiltIndex
from tests.serverproc import RegistryProcess

pytestmark = pytest.mark.e2e

NAMESPACE = "e2e"
SNAPSHOTTER = "native"
DISABLED_PLUGINS = [
    "io.containerd.grpc.v1.cri",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
]


@dataclass
class Containerd:
    socket: Path
    root: Path
    log: Path

    def ctr(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = run(["ctr", "--address", self.socket, "--namespace", NAMESPACE, *args], ok=False)
        if ok:
            assert proc.returncode == 0, f"{describe(proc)}\n--- containerd log\n{self.tail()}"
        return proc

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def snapshot_file(self, name: str) -> list[bytes]:
        """The contents of ``name`` in every unpacked snapshot that has it."""
        snapshots = self.root / f"io.containerd.snapshotter.v1.{SNAPSHOTTER}" / "snapshots"
        return [path.read_bytes() for path in sorted(snapshots.glob(f"*/{name}"))]


def _config(base: Path, socket: Path) -> str:
    disabled = ", ".join(f'"{p}"' for p in DISABLED_PLUGINS)
    return f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
disabled_plugins = [{disabled}]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{base / "opt"}"
"""


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    binary = need("containerd")
    need("ctr", "containerd")
    if os.geteuid() != 0:
        pytest.skip("containerd needs root (these tests start their own daemon)")
    base = tmp_path_factory.mktemp("containerd")
    sockdir = Path(tempfile.mkdtemp(prefix="ctd-", dir="/tmp"))  # unix socket paths are limited to 107 bytes
    socket = sockdir / "containerd.sock"
    config = base / "config.toml"
    config.write_text(_config(base, socket))
    log = base / "containerd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, "--config", str(config)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    daemon = Containerd(socket=socket, root=base / "root", log=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"containerd exited with {proc.returncode} at start:\n{daemon.tail(80)}")
            if socket.exists() and run(["ctr", "--address", socket, "version"], ok=False).returncode == 0:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"containerd did not answer on {socket} within 30 s:\n{daemon.tail(80)}")
            time.sleep(0.1)
        yield daemon
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(sockdir, ignore_errors=True)


def image_row(daemon: Containerd, ref: str) -> str:
    """The ``ctr images ls`` line of ``ref``."""
    listing = daemon.ctr("images", "ls").stdout
    rows = [line for line in listing.splitlines() if line.split(" ", 1)[0] == ref]
    assert len(rows) == 1, f"{ref} not listed once:\n{listing}"
    return rows[0]


def test_pull_unpack_and_list(
    containerd: Containerd, skopeo: Skopeo, shared_registry: RegistryProcess, image: BuiltImage
) -> None:
    repo = unique_repo("ctr-pull")
    push_image(skopeo, image, shared_registry, repo, "v1")
    ref = f"{shared_registry.host}/{repo}:v1"

    containerd.ctr("images", "pull", "--plain-http", "--snapshotter", SNAPSHOTTER, ref)

    row = image_row(containerd, ref)
    assert image.manifest_digest in row.split()
    assert "linux/amd64" in row.split()
    content = containerd.ctr("content", "ls", "--quiet").stdout.split()
    for digest in [image.manifest_digest, image.config_digest, *image.layer_digests]:
        assert digest in content, f"{digest} not in containerd's content store"
    # Unpacked: the files of the layers are in the snapshots.
    assert b"hello from e2e\n" in containerd.snapshot_file("hello.txt")
    assert containerd.snapshot_file("layer1.txt"), "the second layer was not unpacked"


def test_push_to_another_repository(
    containerd: Containerd, skopeo: Skopeo, shared_registry: RegistryProcess, image: BuiltImage
) -> None:
    src_repo, dest_repo = unique_repo("ctr-src"), unique_repo("ctr-dest")
    push_image(skopeo, image, shared_registry, src_repo, "v1")
    src = f"{shared_registry.host}/{src_repo}:v1"
    dest = f"{shared_registry.host}/{dest_repo}:pushed"
    containerd.ctr("images", "pull", "--plain-http", "--snapshotter", SNAPSHOTTER, src)
    containerd.ctr("images", "tag", src, dest)

    containerd.ctr("images", "push", "--plain-http", dest)

    info = skopeo.inspect(f"docker://{dest}")
    assert info["Digest"] == image.manifest_digest
    assert info["Layers"] == image.layer_digests
    assert skopeo.raw(f"docker://{dest}") == image.manifest
    for digest, data in zip(image.layer_digests, image.layers, strict=True):
        assert get_blob(shared_registry.url, dest_repo, digest) == data
    assert skopeo.tags(f"docker://{shared_registry.host}/{dest_repo}") == ["pushed"]
    # containerd labels pulled content with its source repository and mounts it from there (POST answered 201).
    mounts = requests_logged(shared_registry, "POST", f"/v2/{dest_repo}/blobs/uploads/", 201)
    assert len(mounts) >= len(image.layers), "expected containerd to mount the layers from the source repository"


def test_multi_arch_pull_and_push(
    containerd: Containerd, skopeo: Skopeo, shared_registry: RegistryProcess, multiarch: BuiltIndex
) -> None:
    repo, dest_repo = unique_repo("ctr-multi"), unique_repo("ctr-multi-dest")
    push_image(skopeo, multiarch, shared_registry, repo, "v1")
    ref = f"{shared_registry.host}/{repo}:v1"

    containerd.ctr("images", "pull", "--plain-http", "--all-platforms", "--snapshotter", SNAPSHOTTER, ref)

    row = image_row(containerd, ref).split()
    assert multiarch.index_digest in row
    assert "linux/amd64,linux/arm64/v8" in row
    content = containerd.ctr("content", "ls", "--quiet").stdout.split()
    for child in multiarch.images.values():
        assert child.manifest_digest in content
        assert child.layer_digests[0] in content

    dest = f"{shared_registry.host}/{dest_repo}:all"
    containerd.ctr("images", "tag", ref, dest)
    containerd.ctr("images", "push", "--plain-http", dest)
    assert skopeo.raw(f"docker://{dest}") == multiarch.index
    arm = multiarch.images["linux/arm64"]
    assert skopeo.raw(f"docker://{shared_registry.host}/{dest_repo}@{arm.manifest_digest}") == arm.manifest
