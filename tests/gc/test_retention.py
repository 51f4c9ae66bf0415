"""Retention against a real server: the dry run equals the real run, generated artifacts follow their
subject, immutable tags refuse overwrite and delete with an OCI DENIED envelope; plus the pure planner."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest

from registry.extensions.scan.report import SCAN_REPORT_ARTIFACT_TYPE
from registry.gc.rules import Artifact, PolicyError, parse_policy, plan
from tests.gc.test_gc_server import push_blob, push_image, run_cli

POLICY = """
[[rule]]
namespace = "apps"
repositories = "web"
exclude_tags = ["latest"]
keep_last = 2

[[immutable]]
namespace = "apps"
tags = ["release-*"]
"""

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def put_manifest(client: httpx.Client, repo: str, ref: str, doc: dict[str, object]) -> httpx.Response:
    return client.put(
        f"/v2/{repo}/manifests/{ref}", content=json.dumps(doc).encode(), headers={"Content-Type": OCI_MANIFEST}
    )


def wait_for_referrer(client: httpx.Client, repo: str, subject: str, artifact_type: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = client.get(f"/v2/{repo}/referrers/{subject}", params={"artifactType": artifact_type})
        manifests = found.json()["manifests"]
        if manifests:
            return str(manifests[0]["digest"])
        time.sleep(0.2)
    raise AssertionError(f"no {artifact_type} referrer of {subject} within 60 s")


def sbom_for(client: httpx.Client, repo: str, subject: str) -> dict[str, object]:
    empty = push_blob(client, repo, b"{}")
    sbom = b'{"bomFormat": "CycloneDX", "for": "' + subject.encode() + b'"}'
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.cyclonedx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [
            {"mediaType": "application/vnd.cyclonedx+json", "digest": push_blob(client, repo, sbom), "size": len(sbom)}
        ],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
    }


def test_retention_dry_run_equals_real_run_and_immutable_tags(tmp_path: Path) -> None:
    from tests.serverproc import RegistryProcess

    data = tmp_path / "data"
    data.mkdir()
    (data / "retention.toml").write_text(POLICY)
    # Signed attestations of pushed SBOMs would rewrite the cosign ``.att`` tag behind the test's back
    # (asynchronously); this test is about the user's own artifacts, so attesting is off here.
    no_attest = {"REGISTRY__SUPPLY_CHAIN__ATTEST": "false"}
    with RegistryProcess(data, env=no_attest) as proc, httpx.Client(base_url=proc.url, timeout=30) as client:
        release, _ = push_image(client, "apps/web", "release-1", [b"release layer"])
        digests = {f"v{n}": push_image(client, "apps/web", f"v{n}", [f"layer {n}".encode()])[0] for n in range(1, 6)}
        assert put_manifest(
            client, "apps/web", "latest", json.loads(client.get("/v2/apps/web/manifests/v5").content)
        ).status_code == (201)
        sbom = put_manifest(client, "apps/web", "sbom-v1", sbom_for(client, "apps/web", digests["v1"]))
        assert sbom.status_code == 201
        client.delete("/v2/apps/web/manifests/sbom-v1")  # untagged referrer now (digest-only push)
        sbom_digest = sbom.headers["Docker-Content-Digest"]
        # The pushed SBOM is scanned in the background; the scan report is a referrer of v1 and must follow it.
        scan_report = wait_for_referrer(client, "apps/web", digests["v1"], SCAN_REPORT_ARTIFACT_TYPE)
        att_tag = "sha256-" + digests["v1"].split(":")[1] + ".att"
        att, _ = push_image(client, "apps/web", att_tag, [b"attestation for v1"])

        # Immutable tags: neither moved nor deleted, with an OCI DENIED envelope.
        moved = put_manifest(
            client, "apps/web", "release-1", json.loads(client.get("/v2/apps/web/manifests/v2").content)
        )
        assert moved.status_code == 403 and moved.json()["errors"][0]["code"] == "DENIED"
        assert "immutable" in moved.json()["errors"][0]["message"]
        for ref in ("release-1", release):
            denied = client.delete(f"/v2/apps/web/manifests/{ref}")
            assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == "DENIED"
        # Re-pushing the same content under the immutable tag is not a change and is accepted.
        same = put_manifest(
            client, "apps/web", "release-1", json.loads(client.get(f"/v2/apps/web/manifests/{release}").content)
        )
        assert same.status_code == 201

        dry = run_cli("retention", "--data", str(data), "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        planned = json.loads(dry.stdout)["deleted"]
        expected = {digests["v1"], digests["v2"], digests["v3"], sbom_digest, att, scan_report}
        assert {d["digest"] for d in planned} == expected
        assert client.get(f"/v2/apps/web/manifests/{digests['v1']}").status_code == 200  # dry: nothing changed

        real = run_cli("retention", "--data", str(data), "--json")
        assert real.returncode == 0, real.stderr
        assert json.loads(real.stdout)["deleted"] == planned  # exactly what the dry run showed

        for ref in ("v1", "v2", "v3", att_tag, sbom_digest):
            assert client.get(f"/v2/apps/web/manifests/{ref}").status_code == 404
        for ref in ("v4", "v5", "latest", "release-1"):
            assert client.get(f"/v2/apps/web/manifests/{ref}").status_code == 200
        assert client.get(f"/v2/apps/web/referrers/{digests['v1']}").json()["manifests"] == []
        assert json.loads(run_cli("retention", "--data", str(data), "--dry-run", "--json").stdout)["deleted"] == []

    exported = run_cli("audit", "export", "--data", str(data), "--event", "retention.")
    assert {json.loads(line)["resource"].split("@")[1] for line in exported.stdout.splitlines()} == expected
    assert run_cli("audit", "verify", "--data", str(data)).returncode == 0
    # The configuration the server ran with and the policy file it loaded are audited.
    config = [
        json.loads(line)
        for line in run_cli("audit", "export", "--data", str(data), "--event", "config.").stdout.splitlines()
    ]
    assert {c["event"] for c in config} == {"config.load", "config.retention_policy"}
    policy = next(c for c in config if c["event"] == "config.retention_policy")
    assert policy["detail"]["sha256"] == hashlib.sha256(POLICY.encode()).hexdigest()


def _a(digest: str, tags: tuple[str, ...], pushed: float, **kw: object) -> Artifact:
    return Artifact(digest, tags, pushed, **kw)  # type: ignore[arg-type]


def test_plan_combines_rules_as_harbor_does() -> None:
    now = 100 * 86400.0
    policy = parse_policy(
        """
[[rule]]
namespace = "ns"
keep_last = 1
[[rule]]
namespace = "ns"
keep_pulled_days = 7
untagged = "remove"
"""
    )
    artifacts = [
        _a("sha256:a", ("1",), now - 50 * 86400),
        _a("sha256:b", ("2",), now - 40 * 86400, pulled=now - 86400),  # pulled recently: kept
        _a("sha256:c", ("3",), now - 30 * 86400),  # newest: kept
        _a("sha256:d", (), now - 60 * 86400),  # untagged, removed by the second rule
        _a("sha256:idx", ("multi",), now - 90 * 86400, pulled=now, children=("sha256:e",)),
        _a("sha256:e", (), now - 90 * 86400),  # child of a kept index: kept although untagged
        _a("sha256:s", (), now, subject="sha256:a"),  # follows a
    ]
    assert plan("ns/app", artifacts, policy, now) == ["sha256:a", "sha256:d", "sha256:s"]
    assert plan("other/app", artifacts, policy, now) == []


@pytest.mark.parametrize(
    "text",
    [
        '[[rule]]\nnamespace = "ns"\nkeep_lats = 1',
        "[[rule]]\nkeep_last = 1",
        '[[rule]]\nnamespace = "ns"\nuntagged = "maybe"',
        '[[rule]]\nnamespace = "ns"\nkeep_last = -1',
        "[retain]\n",
    ],
)
def test_bad_policies_are_rejected(text: str) -> None:
    with pytest.raises(PolicyError):
        parse_policy(text)
