"""The primary's scan pull policy through a real edge: a real ``registry serve`` with imported vulnerability data
and a per-namespace policy, a real ``edge serve`` in front of it, httpx and skopeo as clients, all on loopback.

An image the edge cached while the primary allowed it stops being served once the primary refuses it: within
``policy_ttl`` when the namespace already had a policy, within ``digest_ttl`` (by digest) when the policy was
switched on later. The refusal is the primary's 403 ``DENIED``, relayed."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.clients import Skopeo
from tests.edge.conftest import EdgeFactory
from tests.scan.test_scan_e2e import DATA, MANIFEST, _blob, _cli, _manifest, _push_image_with_sbom, _wait_reports
from tests.serverproc import RegistryProcess

pytestmark = pytest.mark.e2e
POLICY_TTL, DIGEST_TTL = 1.0, 2.0


def _until(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def _push_image_only(client: httpx.Client, repo: str, tag: str = "v1") -> dict[str, Any]:
    """The image ``_push_image_with_sbom`` pushes (same bytes, same digest), without its SBOM: not scanned yet."""
    config = _blob(
        client,
        repo,
        b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x":"%s"}' % tag.encode(),
    )
    doc = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [],
    }
    return _manifest(client, repo, tag, doc)


def test_edge_stops_serving_what_the_primary_policy_refuses(tmp_path: Path, make_edge: EdgeFactory) -> None:
    with RegistryProcess(tmp_path / "data") as primary, httpx.Client(base_url=primary.url, timeout=30) as client:
        _cli(primary, "vulndb", "import", str(DATA / "debian-tracker.json"))
        _cli(primary, "scan-policy", "set", "pol", "--severity", "LOW")
        config = tmp_path / "edge.toml"
        config.write_text(f"tag_ttl = 60.0\ndigest_ttl = {DIGEST_TTL}\npolicy_ttl = {POLICY_TTL}\n")
        edge = make_edge(primary.url, "--config", str(config))
        via_edge = httpx.Client(base_url=edge.url, timeout=30)
        accept = {"Accept": MANIFEST}

        # 1. The namespace has a policy; the image is pulled through the edge before its scan finished.
        repo = "pol/app"
        image = _push_image_only(client, repo)
        by_digest, by_tag = f"/v2/{repo}/manifests/{image['digest']}", f"/v2/{repo}/manifests/v1"
        first = via_edge.get(by_digest, headers=accept)
        assert first.status_code == 200 and via_edge.get(by_tag, headers=accept).status_code == 200
        assert first.headers.get("x-registry-pull-policy") is None  # the edge does not pass the header on
        assert client.get(by_digest, headers=accept).headers["x-registry-pull-policy"] == "scan; namespace=pol"
        assert _push_image_with_sbom(client, repo) == image  # the SBOM arrives: the primary scans the image
        _wait_reports(client, repo, image["digest"], 1)
        _until("the primary refuses", lambda: client.get(by_digest, headers=accept).status_code == 403)
        time.sleep(POLICY_TTL + 0.2)
        for path in (by_digest, by_tag):
            refused = via_edge.get(path, headers=accept)
            assert refused.status_code == 403, refused.text
            [error] = refused.json()["errors"]
            assert error["code"] == "DENIED" and "scan policy of namespace 'pol'" in error["message"]
            assert via_edge.head(path, headers=accept).status_code == 403
        skopeo = Skopeo(tmp_path / "skopeo")
        denied = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{edge.host}/{repo}@{image['digest']}",
                        ok=False)  # fmt: skip
        assert denied.returncode != 0 and "denied" in denied.stderr.lower(), denied.stderr
        # Blobs are not gated (neither on the primary): the config blob is still served by digest.
        config_digest = first.json()["config"]["digest"]
        assert via_edge.get(f"/v2/{repo}/blobs/{config_digest}").status_code == 200

        # 2. The policy is switched on after the edge cached the image: learned within digest_ttl.
        repo = "late/app"
        image = _push_image_with_sbom(client, repo)
        _wait_reports(client, repo, image["digest"], 1)
        by_digest = f"/v2/{repo}/manifests/{image['digest']}"
        assert via_edge.get(by_digest, headers=accept).status_code == 200
        _cli(primary, "scan-policy", "set", "late", "--severity", "LOW")
        assert client.get(by_digest, headers=accept).status_code == 403
        _until("the edge refuses", lambda: via_edge.get(by_digest, headers=accept).status_code == 403, DIGEST_TTL + 5)
        stats = edge.stats()
        via_edge.close()
        assert stats["revalidations"] >= 3, stats
