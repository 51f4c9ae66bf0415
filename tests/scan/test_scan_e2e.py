"""Scan on push against a real ``registry serve``: push an image and a CycloneDX SBOM referrer over HTTP, import
vulnerability data with the CLI beside the server, and read the scan report back through the referrers API."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.scan.sboms import debian_sbom
from tests.serverproc import BIN, RegistryProcess

DATA = Path(__file__).parent / "data"
REPORT_TYPE = "application/vnd.registry.scan-report.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
pytestmark = pytest.mark.e2e


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _blob(client: httpx.Client, repo: str, data: bytes) -> dict[str, Any]:
    digest = _digest(data)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    return {"digest": digest, "size": len(data)}


def _manifest(client: httpx.Client, repo: str, ref: str, doc: dict[str, Any]) -> dict[str, Any]:
    data = json.dumps(doc).encode()
    r = client.put(f"/v2/{repo}/manifests/{ref}", content=data, headers={"Content-Type": MANIFEST})
    assert r.status_code == 201, r.text
    return {"mediaType": MANIFEST, "digest": _digest(data), "size": len(data)}


def _cli(proc: RegistryProcess, *args: str) -> Any:
    out = subprocess.run(
        [str(BIN / "registry"), *args, "--data", str(proc.data)],
        env=proc.env_for_cli(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def _reports(client: httpx.Client, repo: str, digest: str) -> list[dict[str, Any]]:
    r = client.get(f"/v2/{repo}/referrers/{digest}", params={"artifactType": REPORT_TYPE})
    assert r.status_code == 200, r.text
    return list(r.json()["manifests"])


def _wait_reports(client: httpx.Client, repo: str, digest: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = _reports(client, repo, digest)
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no scan report #{count} for {repo}@{digest} within 60 s")


def _read_report(client: httpx.Client, repo: str, descriptor: dict[str, Any]) -> dict[str, Any]:
    manifest = client.get(f"/v2/{repo}/manifests/{descriptor['digest']}", headers={"Accept": MANIFEST}).json()
    assert manifest["artifactType"] == REPORT_TYPE
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    layer = manifest["layers"][0]
    blob = client.get(f"/v2/{repo}/blobs/{layer['digest']}")
    assert blob.status_code == 200
    assert _digest(blob.content) == layer["digest"]
    return dict(json.loads(blob.content))


def test_scan_on_sbom_push_and_rescan_on_import(tmp_path: Path) -> None:
    with RegistryProcess(tmp_path / "data") as proc, httpx.Client(base_url=proc.url, timeout=30) as client:
        imported = _cli(proc, "vulndb", "import", str(DATA / "debian-tracker.json"))
        assert imported["generation"] == 1
        repo = "scan/app"
        image = _push_image_with_sbom(client, repo)
        [first] = _wait_reports(client, repo, image["digest"], 1)
        report = _read_report(client, repo, first)
        assert report["subject"]["digest"] == image["digest"]
        assert {v["id"] for v in report["vulnerabilities"]} == {
            "CVE-2024-0002",
            "CVE-2024-0003",
            "CVE-2024-0005",
            "CVE-2023-45853",
        }
        assert report["scanner"]["vulndbGeneration"] == 1

        # a new database: the CLI rescans what was scanned before and attaches a new report
        imported = _cli(proc, "vulndb", "import", str(DATA / "osv-records.json"))
        assert imported == {**imported, "generation": 2, "rescanned": 1}
        reports = _wait_reports(client, repo, image["digest"], 2)
        newest = max((_read_report(client, repo, d) for d in reports), key=lambda r: r["scanner"]["vulndbGeneration"])
        assert newest["scanner"]["vulndbGeneration"] == 2
        assert "GHSA-h5c8-rqwp-cp95" in {v["id"] for v in newest["vulnerabilities"]}

        # on demand, by tag, without publishing
        on_demand = _cli(proc, "scan", f"{repo}:v1", "--no-publish")
        assert on_demand["summary"] == newest["summary"]
        assert len(_reports(client, repo, image["digest"])) == 2

        # the pull policy: off by default, DENIED at or above the severity, allowlist by id or alias
        def pull() -> httpx.Response:
            return client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": MANIFEST})

        assert pull().status_code == 200
        assert _cli(proc, "scan-policy", "set", "scan", "--severity", "critical")["min_severity"] == "CRITICAL"
        denied = pull()
        assert denied.status_code == 403
        [error] = denied.json()["errors"]
        assert error["code"] == "DENIED"
        assert "scan policy of namespace 'scan'" in error["message"]
        assert "GHSA-67hx-6x53-jw92" in error["message"]
        assert client.head(f"/v2/{repo}/manifests/v1", headers={"Accept": MANIFEST}).status_code == 403
        assert client.get(f"/v2/{repo}/manifests/{first['digest']}").status_code == 200  # the report itself
        _cli(proc, "scan-policy", "set", "scan", "--severity", "CRITICAL", "--allow", "CVE-2023-45133")
        assert pull().status_code == 200
        _cli(proc, "scan-policy", "set", "scan", "--severity", "HIGH", "--allow", "CVE-2023-45133")
        assert pull().status_code == 403
        assert _cli(proc, "scan-policy", "list") == [
            {"namespace": "scan", "min_severity": "HIGH", "allowlist": ["CVE-2023-45133"]}
        ]
        _cli(proc, "scan-policy", "clear", "scan")
        assert pull().status_code == 200


def _push_image_with_sbom(
    client: httpx.Client, repo: str, tag: str = "v1", sbom_bytes: bytes | None = None
) -> dict[str, Any]:
    config = _blob(
        client,
        repo,
        b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x":"%s"}' % tag.encode(),
    )
    image = _manifest(
        client,
        repo,
        tag,
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [],
        },
    )
    empty = _blob(client, repo, b"{}")
    sbom = _blob(client, repo, json.dumps(debian_sbom()).encode() if sbom_bytes is None else sbom_bytes)
    _manifest(
        client,
        repo,
        f"{tag}-sbom",
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "artifactType": "application/vnd.cyclonedx+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", **empty},
            "layers": [{"mediaType": "application/vnd.cyclonedx+json", **sbom}],
            "subject": image,
        },
    )
    return image


def test_management_api_serves_scan_results(tmp_path: Path) -> None:
    with RegistryProcess(tmp_path / "data", "--auth", "token") as proc:
        stored = json.loads((proc.data / "admin-credential.json").read_text())
        admin = (str(stored["username"]), str(stored["password"]))
        with httpx.Client(base_url=proc.url, timeout=30, auth=admin) as client:
            _cli(proc, "vulndb", "import", str(DATA / "alpine-v3.19-main.json"), str(DATA / "debian-tracker.json"))
            assert client.post("/api/v1/namespaces", json={"name": "team"}).status_code == 201
            broken = _push_image_with_sbom(client, "team/app", "broken", b"{not json")
            image = _push_image_with_sbom(client, "team/app")
            _wait_reports(client, "team/app", image["digest"], 1)
            r = client.get(f"/api/v1/scans/team/app/{image['digest']}")
            assert r.status_code == 200, r.text
            assert r.json()["summary"]["HIGH"] == 1
            assert r.json()["subject"]["digest"] == image["digest"]
            # the unreadable SBOM was skipped (and did not hold up the later one)
            assert client.get(f"/api/v1/scans/team/app/{broken['digest']}").status_code == 404
            missing = client.get(f"/api/v1/scans/team/other/{image['digest']}")
            assert missing.status_code == 404
            assert missing.json()["errors"][0]["code"] == "NOT_FOUND"
        anonymous = httpx.get(f"{proc.url}/api/v1/scans/team/app/{image['digest']}", timeout=30)
        assert anonymous.status_code == 401
