"""Edge-identity mode (the Kubernetes mode): containerd sends no credentials to the mirror; the edge pulls with
its own service account from a primary with auth on and serves what that account may pull — also after the
primary is stopped. The edge requires a static client header, which the generated hosts.toml carries."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.clients import run
from tests.e2e.test_containerd import SNAPSHOTTER, Containerd, containerd  # noqa: F401 - the fixture
from tests.edge.authprimary import AuthPrimary, auth_primary  # noqa: F401 - the fixture
from tests.edge.conftest import EdgeFactory
from tests.imagebuild import build_image
from tests.serverproc import BIN

pytestmark = pytest.mark.e2e

HEADER = "X-Edge-Key"


def test_ctr_pulls_through_an_identity_edge_and_from_the_edge_alone(
    containerd: Containerd,  # noqa: F811 - the imported fixture
    auth_primary: AuthPrimary,  # noqa: F811 - the imported fixture
    make_edge: EdgeFactory,
    tmp_path: Path,
) -> None:
    """Mode: identity (edge-node may pull team-a only), client header required, ctr without --user."""
    image = build_image(tmp_path / "layout", text="hello from the identity edge\n", tag="v1")
    repo = f"team-a/ctr-{uuid.uuid4().hex[:8]}"
    forbidden = f"team-b/ctr-{uuid.uuid4().hex[:8]}"
    auth_primary.push_image(repo, image, "v1")
    auth_primary.push_image(forbidden, image, "v1")
    password = tmp_path / "edge-password"
    password.write_text(auth_primary.edge_node.password)
    header_value = tmp_path / "header-value"
    header_value.write_text(uuid.uuid4().hex)
    config = tmp_path / "edge.toml"
    config.write_text("auth_cache_ttl = 0.0\n")  # every request asks the token service: the stale path runs
    edge = make_edge(
        auth_primary.url,
        "--config",
        str(config),
        "--tag-ttl",
        "0",
        "--auth-mode",
        "identity",
        "--identity-username",
        auth_primary.edge_node.username,
        "--identity-password-file",
        str(password),
        "--client-header-name",
        HEADER,
        "--client-header-value-file",
        str(header_value),
    )
    primary_host = auth_primary.proc.host
    hosts_toml = run(
        [
            BIN / "edge",
            "containerd-config",
            "--upstream",
            auth_primary.url,
            "--registry-host",
            primary_host,
            "--edge-url",
            edge.url,
            "--client-header-name",
            HEADER,
            "--client-header-value-file",
            str(header_value),
        ]
    ).stdout
    assert f'[host."{edge.url}".header]' in hosts_toml
    hosts_dir = tmp_path / "certs.d"
    (hosts_dir / primary_host).mkdir(parents=True)
    (hosts_dir / primary_host / "hosts.toml").write_text(hosts_toml)

    manifest_path = f"{edge.url}/v2/{repo}/manifests/v1"
    no_header = httpx.get(manifest_path, timeout=30)
    assert no_header.status_code == 403 and no_header.json()["errors"][0]["code"] == "DENIED"
    wrong_header = httpx.get(manifest_path, headers={HEADER: "guess"}, timeout=30)
    assert wrong_header.status_code == 403
    headers = {HEADER: header_value.read_text(), "Accept": "application/vnd.oci.image.manifest.v1+json"}
    refused = httpx.get(f"{edge.url}/v2/{forbidden}/manifests/v1", headers=headers, timeout=30)
    assert refused.status_code == 403 and refused.json()["errors"][0]["code"] == "DENIED"

    ref = f"{primary_host}/{repo}:v1"
    containerd.ctr("images", "pull", "--hosts-dir", str(hosts_dir), "--snapshotter", SNAPSHOTTER, ref)
    assert b"hello from the identity edge\n" in containerd.snapshot_file("hello.txt")
    first = edge.stats()
    assert first["misses"] == 1 + len(image.layers), "config and layers came through the edge"
    # ctr has no credentials: the edge refuses team-b, and so does the primary it then falls back to.
    denied = containerd.ctr(
        "images",
        "pull",
        "--hosts-dir",
        str(hosts_dir),
        "--snapshotter",
        SNAPSHOTTER,
        f"{primary_host}/{forbidden}:v1",
        ok=False,
    )
    assert denied.returncode != 0, "neither the edge nor the primary serves team-b to an anonymous node"

    auth_primary.proc.stop()  # this module's primary: no other test uses it afterwards
    containerd.ctr("images", "rm", "--sync", ref)
    all_digests = [image.manifest_digest, image.config_digest, *image.layer_digests]
    leftover = [d for d in all_digests if d in containerd.ctr("content", "ls", "--quiet").stdout.split()]
    if leftover:
        containerd.ctr("content", "rm", *leftover)
    assert not set(all_digests) & set(containerd.ctr("content", "ls", "--quiet").stdout.split())

    containerd.ctr("images", "pull", "--hosts-dir", str(hosts_dir), "--snapshotter", SNAPSHOTTER, ref)

    assert set(all_digests) <= set(containerd.ctr("content", "ls", "--quiet").stdout.split())
    second = edge.stats()
    assert second["misses"] == first["misses"], "nothing could come from the stopped primary"
    assert second["stale_serves"] >= 1, "the tag was resolved from the edge's last known digest"
    still_refused = httpx.get(f"{edge.url}/v2/{forbidden}/manifests/v1", headers=headers, timeout=30)
    assert still_refused.status_code == 403, "the last decision stands during the outage, a refusal too"
