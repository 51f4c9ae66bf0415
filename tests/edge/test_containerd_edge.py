"""containerd (``ctr``) pulling through an edge with the hosts.toml that ``edge containerd-config`` prints, and
pulling again from the edge alone once the primary is stopped.
Auth mode of every test here: none (an open primary, ``--auth none``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.clients import run
from tests.e2e.test_containerd import SNAPSHOTTER, Containerd, containerd  # noqa: F401 - the fixture
from tests.edge.conftest import EdgeFactory
from tests.edge.edgeproc import EdgeProcess
from tests.edge.ocipush import push_image, unique_repo
from tests.imagebuild import build_image
from tests.serverproc import BIN, RegistryProcess

pytestmark = pytest.mark.e2e


def write_hosts_toml(hosts_dir: Path, primary: RegistryProcess, edge: EdgeProcess) -> Path:
    """Write what ``edge containerd-config`` prints to ``hosts_dir/<primary host>/hosts.toml``."""
    cmd = [BIN / "edge", "containerd-config", "--upstream", primary.url]
    config = run([*cmd, "--registry-host", primary.host, "--edge-url", edge.url]).stdout
    (hosts_dir / primary.host).mkdir(parents=True)
    (hosts_dir / primary.host / "hosts.toml").write_text(config)
    return hosts_dir


def test_ctr_pulls_through_the_edge_and_from_the_edge_alone(
    containerd: Containerd,  # noqa: F811 - the imported fixture
    make_edge: EdgeFactory,
    tmp_path: Path,
) -> None:
    image = build_image(tmp_path / "layout", text="hello through the edge\n", tag="v1")
    repo = unique_repo("ctr")
    all_digests = [image.manifest_digest, image.config_digest, *image.layer_digests]
    with RegistryProcess(tmp_path / "primary") as primary:
        push_image(primary.url, repo, image, "v1")
        edge = make_edge(primary.url, "--tag-ttl", "0")  # every resolve revalidates
        hosts_dir = write_hosts_toml(tmp_path / "certs.d", primary, edge)
        ref = f"{primary.host}/{repo}:v1"

        containerd.ctr("images", "pull", "--hosts-dir", str(hosts_dir), "--snapshotter", SNAPSHOTTER, ref)

        assert image.manifest_digest in containerd.ctr("images", "ls").stdout
        assert b"hello through the edge\n" in containerd.snapshot_file("hello.txt")
        first = edge.stats()
        assert first["misses"] == 1 + len(image.layers), "config and layers were fetched through the edge"
        assert first["manifest_misses"] >= 1
        primary.stop()

    containerd.ctr("images", "rm", "--sync", ref)
    stored = set(containerd.ctr("content", "ls", "--quiet").stdout.split())
    leftover = [d for d in all_digests if d in stored]
    if leftover:
        containerd.ctr("content", "rm", *leftover)
    assert not set(all_digests) & set(containerd.ctr("content", "ls", "--quiet").stdout.split())

    containerd.ctr("images", "pull", "--hosts-dir", str(hosts_dir), "--snapshotter", SNAPSHOTTER, ref)

    content = set(containerd.ctr("content", "ls", "--quiet").stdout.split())
    assert set(all_digests) <= content
    second = edge.stats()
    assert second["misses"] == first["misses"], "nothing could come from the stopped primary"
    assert second["hits"] - first["hits"] == 1 + len(image.layers)
    assert second["stale_serves"] >= 1, "the tag was resolved from the edge's last known digest"


def test_ctr_falls_back_when_the_edge_does_not_mirror_the_registry(
    containerd: Containerd,  # noqa: F811 - the imported fixture
    make_edge: EdgeFactory,
    tmp_path: Path,
) -> None:
    image = build_image(tmp_path / "layout", text="not mirrored\n", tag="v1")
    repo = unique_repo("ctr-ns")
    with RegistryProcess(tmp_path / "primary") as primary:
        push_image(primary.url, repo, image, "v1")
        edge = make_edge("http://127.0.0.1:9", "--upstream-name", "other.example")  # mirrors another registry
        hosts_dir = write_hosts_toml(tmp_path / "certs.d", primary, edge)
        ref = f"{primary.host}/{repo}:v1"

        containerd.ctr("images", "pull", "--hosts-dir", str(hosts_dir), "--snapshotter", SNAPSHOTTER, ref)

    stats = edge.stats()
    assert stats["unknown_ns"] >= 1, "containerd names the registry in ?ns=, which this edge does not mirror"
    assert stats["upstream_requests"] == 0 and stats["misses"] == 0


def test_ctr_pulls_the_same_repository_from_two_upstreams_through_one_edge(
    containerd: Containerd,  # noqa: F811 - the imported fixture
    make_edge: EdgeFactory,
    tmp_path: Path,
) -> None:
    """One edge, two primaries (``[[upstreams]]``), one ``hosts.toml`` per registry host: containerd's ``ns``
    selects the upstream, and the same repository name yields each primary's own image."""
    repo = unique_repo("ctr-multi")
    first = build_image(tmp_path / "first", text="from the first primary\n", tag="v1")
    second = build_image(tmp_path / "second", text="from the second primary\n", tag="v1")
    with RegistryProcess(tmp_path / "p1") as one, RegistryProcess(tmp_path / "p2") as two:
        push_image(one.url, repo, first, "v1")
        push_image(two.url, repo, second, "v1")
        config = tmp_path / "edge.toml"
        config.write_text(f'[[upstreams]]\nurl = "{two.url}"\n')
        edge = make_edge(one.url, "--config", str(config))
        hosts_dir = write_hosts_toml(tmp_path / "certs.d", one, edge)
        write_hosts_toml(hosts_dir, two, edge)
        for primary in (one, two):
            ref = f"{primary.host}/{repo}:v1"
            containerd.ctr("images", "pull", "--hosts-dir", str(hosts_dir), "--snapshotter", SNAPSHOTTER, ref)
        listed = containerd.ctr("images", "ls").stdout
        assert first.manifest_digest in listed and second.manifest_digest in listed
        texts = containerd.snapshot_file("hello.txt")
        assert b"from the first primary\n" in texts and b"from the second primary\n" in texts
        assert edge.stats()["misses"] == 2 * (1 + len(first.layers)), "every config and layer came through the edge"
