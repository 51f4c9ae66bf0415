"""Several upstreams on one edge (auth mode: none on both primaries and the edge).

Two real primaries hold the same repository name with different images; one edge serves both, chosen by
containerd's ``?ns=`` or by a path prefix ``/v2/<name>/<repo>/...``; the edge's repository scoping is per upstream.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from edge.cli import _settings, build_parser
from edge.settings import SettingsError, load_settings
from tests.edge.conftest import EdgeFactory
from tests.edge.ocipush import push_blob, push_manifest, sha256, unique_repo
from tests.imagebuild import OCI_MANIFEST
from tests.serverproc import RegistryProcess

CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"


def _image(base_url: str, repo: str, text: str) -> tuple[bytes, bytes]:
    """Push a one-layer image tagged ``v1``; (manifest bytes, layer bytes)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "note": text}).encode()
    layer = f"layer of {text}".encode() * 100
    push_blob(base_url, repo, config)
    push_blob(base_url, repo, layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": LAYER, "digest": sha256(layer), "size": len(layer)}],
        }
    ).encode()
    push_manifest(base_url, repo, "v1", manifest)
    return manifest, layer


def _pull(client: httpx.Client, prefix: str, repo: str, query: str) -> tuple[bytes, bytes]:
    manifest = client.get(f"{prefix}/{repo}/manifests/v1{query}", headers={"Accept": OCI_MANIFEST})
    assert manifest.status_code == 200, manifest.text
    layer_digest = json.loads(manifest.content)["layers"][0]["digest"]
    layer = client.get(f"{prefix}/{repo}/blobs/{layer_digest}{query}")
    assert layer.status_code == 200, layer.text
    assert sha256(layer.content) == layer_digest
    return manifest.content, layer.content


def test_two_upstreams_by_ns_and_path_prefix(
    tmp_path: Path, primary: RegistryProcess, registry: RegistryProcess, make_edge: EdgeFactory
) -> None:
    repo = unique_repo("multi")
    one = _image(primary.url, repo, "first primary")
    two = _image(registry.url, repo, "second primary")
    assert one != two
    config = tmp_path / "edge.toml"
    config.write_text(f'[[upstreams]]\nurl = "{registry.url}"\nnames = ["second.example"]\n')
    edge = make_edge(primary.url, "--config", str(config))
    with httpx.Client(base_url=edge.url, timeout=30) as client:
        # ?ns= (containerd): the default upstream by its host:port, the second by its host:port and its name.
        assert _pull(client, "/v2", repo, f"?ns={primary.host}") == one
        assert _pull(client, "/v2", repo, f"?ns={registry.host}") == two
        assert _pull(client, "/v2", repo, "?ns=second.example") == two
        # Path prefix (podman/CRI-O mirrors send no ns), and no prefix: the default upstream.
        assert _pull(client, "/v2/second.example", repo, "") == two
        assert _pull(client, f"/v2/{registry.host}", repo, "") == two
        assert _pull(client, f"/v2/{primary.host}", repo, "") == one
        assert _pull(client, "/v2", repo, "") == one
        # Scoping: the second image's layer is linked on the second upstream only, so the default upstream's
        # repository of the same name does not serve it (and vice versa), though the blob is in the cache.
        two_layer = sha256(two[1])
        one_layer = sha256(one[1])
        assert client.get(f"/v2/{repo}/blobs/{two_layer}").status_code == 404
        assert client.head(f"/v2/{repo}/blobs/{two_layer}?ns={primary.host}").status_code == 404
        assert client.get(f"/v2/second.example/{repo}/blobs/{one_layer}").status_code == 404
        # Tags: the same tag name resolves per upstream, also on repeated (cached) reads.
        for _ in range(2):
            assert client.get(f"/v2/{repo}/manifests/v1?ns=second.example").content == two[0]
            assert client.get(f"/v2/{repo}/manifests/v1").content == one[0]
        # Pushes go to the default upstream only.
        push = client.post(f"/v2/{repo}/blobs/uploads/?ns=second.example")
        assert push.status_code == 405
        assert push.json()["errors"][0]["code"] == "UNSUPPORTED"
        # An unknown ns: a fast 404 without asking any upstream.
        started = time.monotonic()
        unknown = client.get(f"/v2/{repo}/manifests/v1?ns=elsewhere.example")
        assert unknown.status_code == 404
        assert unknown.json()["errors"][0]["code"] == "NAME_UNKNOWN"
        assert time.monotonic() - started < 1.0
        assert edge.stats()["unknown_ns"] == 1


def test_single_upstream_config_unchanged(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('upstream = "http://127.0.0.1:5000"\nupstream_names = ["registry.example"]\n')
    settings = load_settings(config)
    assert settings.upstreams == ()
    assert settings.names() == {"127.0.0.1:5000", "registry.example"}
    assert settings.upstream_id == "127.0.0.1:5000"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('auth_mode = "identity"\n[[upstreams]]\nurl = "https://ghcr.io"\n', 'need auth_mode = "none"'),
        ('[[upstreams]]\nurl = "http://127.0.0.1:5000"\n', "already configured"),
        ('upstream_names = ["a.example"]\n[[upstreams]]\nurl = "https://ghcr.io"\nnames = ["a.example"]\n', "already"),
        ('[[upstreams]]\nurl = "ghcr.io"\n', "upstreams[0].url"),
        ('[[upstreams]]\nurl = "https://ghcr.io"\ncolour = "red"\n', "unknown key colour"),
        ('[[upstreams]]\nurl = "https://ghcr.io"\nusername = "me"\n', "set together"),
    ],
)
def test_misconfigured_upstreams_refused(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('upstream = "http://127.0.0.1:5000"\n' + text.replace('auth_mode = "identity"\n', ""))
    overrides = {"auth_mode": "identity", "identity_username": "x", "identity_password_file": str(config)}
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(config, overrides if "identity" in text else None)


def test_docker_hub_extra_upstream_names(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('upstream = "http://127.0.0.1:5000"\n[[upstreams]]\nurl = "https://docker.io"\n')
    hub = load_settings(config).upstreams[0].settings(load_settings(config))
    assert hub.upstream_url == "https://registry-1.docker.io"
    assert hub.upstream_id == "docker.io"
    assert "docker.io" in hub.names()


def test_extra_upstream_flag_adds_to_config_file(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('[[upstreams]]\nurl = "https://ghcr.io"\n')
    argv = ["serve", "--config", str(config), "--upstream", "http://127.0.0.1:5000"]
    extra = ["--extra-upstream", "http://127.0.0.1:6000=b.example,c.example", "--extra-upstream", "https://quay.io"]
    args = build_parser().parse_args([*argv, *extra])
    settings = _settings(args)
    assert [(x.url, x.names) for x in settings.upstreams] == [
        ("https://ghcr.io", ()),
        ("http://127.0.0.1:6000", ("b.example", "c.example")),
        ("https://quay.io", ()),
    ]
