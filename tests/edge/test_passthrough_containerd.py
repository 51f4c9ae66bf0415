"""containerd (``ctr --user``) through a passthrough edge in front of a primary with auth on: ctr follows the
edge's challenge to the primary's token service and presents that token to the edge (what a pull secret
does; kubelet does not send one to a mirror — that is identity mode)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.e2e.clients import run
from tests.e2e.test_containerd import SNAPSHOTTER, Containerd, containerd  # noqa: F401 - the fixture
from tests.edge.authprimary import AuthPrimary, auth_primary  # noqa: F401 - the fixture
from tests.edge.conftest import EdgeFactory
from tests.imagebuild import build_image
from tests.serverproc import BIN

pytestmark = pytest.mark.e2e


def test_ctr_with_credentials_pulls_through_a_passthrough_edge(
    containerd: Containerd,  # noqa: F811 - the imported fixture
    auth_primary: AuthPrimary,  # noqa: F811 - the imported fixture
    make_edge: EdgeFactory,
    tmp_path: Path,
) -> None:
    """Mode: passthrough (ctr --user reader, who may pull team-a only)."""
    image = build_image(tmp_path / "layout", text="hello through passthrough\n", tag="v1")
    repo = f"team-a/ctr-{uuid.uuid4().hex[:8]}"
    auth_primary.push_image(repo, image, "v1")
    edge = make_edge(auth_primary.url, "--auth-mode", "passthrough")
    host = auth_primary.proc.host
    cmd = [BIN / "edge", "containerd-config", "--upstream", auth_primary.url, "--registry-host", host]
    (tmp_path / "certs.d" / host).mkdir(parents=True)
    (tmp_path / "certs.d" / host / "hosts.toml").write_text(run([*cmd, "--edge-url", edge.url]).stdout)
    reader = auth_primary.reader
    pull = ["images", "pull", "--hosts-dir", str(tmp_path / "certs.d"), "--snapshotter", SNAPSHOTTER]

    containerd.ctr(*pull, "--user", f"{reader.username}:{reader.password}", f"{host}/{repo}:v1")

    assert b"hello through passthrough\n" in containerd.snapshot_file("hello.txt")
    stats = edge.stats()
    assert stats["misses"] == 1 + len(image.layers), "config and layers came through the edge"
    assert stats["manifest_misses"] >= 1
