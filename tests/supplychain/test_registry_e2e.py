"""A real registry: pushing a multi-platform image yields SBOM referrers per platform and signed attestations
(referrers and the cosign ``.att`` tag); skopeo and oras-py read them; ``registry attest verify`` checks them;
SBOMs pushed by other tools are indexed; a forged "generated" artifact is not signed."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import oras.client  # type: ignore[import-untyped]
import pytest

from tests.e2e.clients import Skopeo
from tests.serverproc import BIN, SBOM_ON_PUSH, RegistryProcess, wait_for_event_subscribers
from tests.supplychain.fixtures import APK_INSTALLED, DEBIAN_OS, DPKG_STATUS, F, layer, whiteout
from tests.supplychain.schemas import cyclonedx_problems, spdx_problems
from tests.supplychain.thirdparty import verify_envelope

pytestmark = pytest.mark.e2e
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
CDX = "application/vnd.cyclonedx+json"
SPDX = "application/spdx+json"
IN_TOTO = "application/vnd.in-toto+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
HARBOR = "application/vnd.goharbor.harbor.sbom.v1"
SCAN = "application/vnd.registry.scan-report.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def desc(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha(data), "size": len(data), **extra}


def put_blob(c: httpx.Client, repo: str, data: bytes) -> None:
    r = c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha(data)}, content=data)
    assert r.status_code == 201, r.text


def put_manifest(c: httpx.Client, repo: str, ref: str, doc: dict[str, Any]) -> bytes:
    data = json.dumps(doc).encode()
    r = c.put(f"/v2/{repo}/manifests/{ref}", content=data, headers={"Content-Type": doc["mediaType"]})
    assert r.status_code == 201, r.text
    return data


def push_platform(c: httpx.Client, repo: str, arch: str, layers: list[bytes]) -> bytes:
    blobs = [gzip.compress(t, mtime=0) for t in layers]
    config = json.dumps(
        {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in layers]}}
    ).encode()
    for blob in [config, *blobs]:
        put_blob(c, repo, blob)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json", config),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", b) for b in blobs],
    }
    return put_manifest(c, repo, sha(json.dumps(doc).encode()), doc)


def referrers(c: httpx.Client, repo: str, digest: str) -> list[dict[str, Any]]:
    r = c.get(f"/v2/{repo}/referrers/{digest}")
    assert r.status_code == 200, r.text
    return list(r.json()["manifests"])


def wait_for(c: httpx.Client, repo: str, digest: str, want: dict[str, int], timeout: float = 120) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = referrers(c, repo, digest)
        # Scan reports (registry.extensions.scan) and their attestations also land on the image; not counted here.
        mine = [d for d in found if "scan-report" not in d.get("annotations", {}).get("predicateType", "")]
        counts = {t: sum(1 for d in mine if d.get("artifactType") == t) for t in want}
        if counts == want or time.monotonic() > deadline:
            assert counts == want, json.dumps(found, indent=2)
            return found
        time.sleep(0.5)


def cli(proc: RegistryProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "registry"), *args, "--data", str(proc.data)],
        capture_output=True,
        text=True,
        timeout=300,
        env=proc.env_for_cli(),
    )


def layer_of(c: httpx.Client, repo: str, manifest_digest: str) -> tuple[dict[str, Any], bytes]:
    manifest = c.get(f"/v2/{repo}/manifests/{manifest_digest}", headers={"Accept": OCI_MANIFEST}).json()
    blob = c.get(f"/v2/{repo}/blobs/{manifest['layers'][0]['digest']}").content
    return manifest, blob


@pytest.fixture
def registry(tmp_path: Path) -> Any:
    with RegistryProcess(tmp_path / "data", env=SBOM_ON_PUSH) as proc:
        yield proc


def test_sboms_and_attestations_on_push(registry: RegistryProcess, tmp_path: Path) -> None:
    repo = "supply/app"
    debian = [
        layer(("etc/os-release", DEBIAN_OS), ("var/lib/dpkg/status", DPKG_STATUS)),
        layer(whiteout("etc/os-release"), F("etc/os-release", link="/usr/lib/os-release"),
              ("usr/lib/os-release", DEBIAN_OS)),
    ]  # fmt: skip
    alpine = [layer(("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n"), ("lib/apk/db/installed", APK_INSTALLED))]
    with httpx.Client(base_url=registry.url, timeout=60) as c:
        amd64 = push_platform(c, repo, "amd64", debian)
        arm64 = push_platform(c, repo, "arm64", alpine)
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                desc(OCI_MANIFEST, amd64, platform={"os": "linux", "architecture": "amd64"}),
                desc(OCI_MANIFEST, arm64, platform={"os": "linux", "architecture": "arm64"}),
            ],
        }
        put_manifest(c, repo, "v1", index)
        want = {CDX: 1, SPDX: 1, IN_TOTO: 2}
        found = {sha(m): wait_for(c, repo, sha(m), want) for m in (amd64, arm64)}

        # One SBOM per platform, each listing exactly that platform's packages.
        cdx_amd64 = next(d for d in found[sha(amd64)] if d["artifactType"] == CDX)
        manifest, body = layer_of(c, repo, cdx_amd64["digest"])
        assert manifest["subject"]["digest"] == sha(amd64) and manifest["config"]["mediaType"].endswith("empty.v1+json")
        assert manifest["layers"][0]["mediaType"] == CDX
        doc = json.loads(body)
        assert {comp["name"] for comp in doc["components"]} == {"libc6", "libssl3", "base-files"}
        assert all("distro=debian-12" in comp["purl"] for comp in doc["components"])
        cdx_arm64 = next(d for d in found[sha(arm64)] if d["artifactType"] == CDX)
        _, body = layer_of(c, repo, cdx_arm64["digest"])
        assert {comp["name"] for comp in json.loads(body)["components"]} == {"musl", "libcrypto3"}

        # Attestations: referrers with a DSSE layer, and cosign's .att tag with one layer per predicate type.
        att_tag = "sha256-" + sha(amd64).split(":")[1] + ".att"
        r = c.get(f"/v2/{repo}/manifests/{att_tag}", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200, r.text
        att = r.json()
        assert {layer["mediaType"] for layer in att["layers"]} == {DSSE}
        # The scan report's attestation may already be there too (scan on push); only the SBOMs' are counted.
        assert sorted(
            layer["annotations"]["predicateType"]
            for layer in att["layers"]
            if "scan-report" not in layer["annotations"]["predicateType"]
        ) == ["https://cyclonedx.org/bom", "https://spdx.dev/Document"]
        envelope = json.loads(c.get(f"/v2/{repo}/blobs/{att['layers'][0]['digest']}").content)
        statement = json.loads(base64.b64decode(envelope["payload"]))
        assert statement["subject"][0]["digest"] == {"sha256": sha(amd64).split(":")[1]}

        # Third-party checks of what was published (tests/supplychain/thirdparty.py, schemas.py): every attestation
        # of the image with securesystemslib + python-ecdsa + the in-toto framework against the published keys,
        # its predicate equal to the attested document, and the SBOM documents against their schemas.
        published = json.loads(cli(registry, "attest", "keys").stdout)["keys"]
        for att_layer in att["layers"]:
            stmt = verify_envelope(c.get(f"/v2/{repo}/blobs/{att_layer['digest']}").content, published)
            assert stmt["predicateType"] == att_layer["annotations"]["predicateType"]
            assert stmt["subject"] == [{"name": repo, "digest": {"sha256": sha(amd64).split(":")[1]}}]
        checked: dict[str, int] = {}
        for ref in found[sha(amd64)]:
            manifest, body = layer_of(c, repo, ref["digest"])
            if ref["artifactType"] == IN_TOTO:
                stmt = verify_envelope(body, published)
                _, document = layer_of(c, repo, manifest["annotations"]["dev.oci-registry.attests"])
                assert stmt["predicate"] == json.loads(document)
            elif ref["artifactType"] == CDX:
                assert cyclonedx_problems(body) == []
            elif ref["artifactType"] == SPDX:
                assert spdx_problems(body) == []
            checked[ref["artifactType"]] = checked.get(ref["artifactType"], 0) + 1
        assert checked[IN_TOTO] >= 2 and checked[CDX] == checked[SPDX] == 1, checked

        # skopeo reads the referrer and the .att image; oras-py pulls the SBOM.
        skopeo = Skopeo(tmp_path / "skopeo")
        raw = skopeo.raw(f"docker://{registry.host}/{repo}@{cdx_amd64['digest']}")
        assert json.loads(raw)["artifactType"] == CDX
        skopeo.copy(f"docker://{registry.host}/{repo}:{att_tag}", f"oci:{tmp_path / 'att'}:att")
        assert (tmp_path / "att" / "index.json").exists()
        oras_client = oras.client.OrasClient(hostname=registry.host, insecure=True)
        pulled = oras_client.pull(target=f"{registry.host}/{repo}@{cdx_amd64['digest']}", outdir=str(tmp_path / "o"))
        assert pulled and json.loads(Path(pulled[0]).read_bytes())["bomFormat"] == "CycloneDX"

    # registry attest verify: signatures and subjects (2 platforms, 2 referrers + 2 .att layers each).
    out = cli(registry, "attest", "verify", f"{repo}:v1")
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    sbom_checks = [c for c in report["checks"] if "scan-report" not in c["predicate_type"]]
    assert report["ok"] and len(sbom_checks) == 8  # (+ 4 for the scan reports' attestations, once they landed)
    # Tamper with one stored envelope (subject digest changed, same length, signature kept). The referrer and the
    # .att layer share that blob: verify fails on exactly those two checks.
    digest = att["layers"][0]["digest"]
    blob = registry.data / "blobs" / "sha256" / digest[7:9] / digest[7:]
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    envelope["payload"] = base64.b64encode(payload).decode()
    tampered = json.dumps(envelope, separators=(",", ":")).encode()
    assert len(tampered) == blob.stat().st_size
    blob.write_bytes(tampered)
    out = cli(registry, "attest", "verify", f"{repo}:v1")
    assert out.returncode == 1, out.stdout + out.stderr
    failed = [c for c in json.loads(out.stdout)["checks"] if not c["ok"]]
    assert sorted(c["source"].split()[0] for c in failed) == ["cosign", "referrer"], failed
    assert all("no signature verifies" in c["detail"] for c in failed)
    keys = cli(registry, "attest", "keys", "--pem")
    assert keys.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    listed = cli(registry, "sbom", "list", repo)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert {(r["subject"], r["format"], r["source"]) for r in rows} == {
        (sha(m), f, "registry") for m in (amd64, arm64) for f in ("cyclonedx", "spdx")
    }


def test_pushed_sboms_are_indexed_and_forged_artifacts_not_signed(registry: RegistryProcess) -> None:
    repo = "supply/other"
    with httpx.Client(base_url=registry.url, timeout=60) as c:
        image = push_platform(c, repo, "amd64", [layer(("etc/os-release", DEBIAN_OS))])
        wait_for(c, repo, sha(image), {CDX: 1, SPDX: 1, IN_TOTO: 2})
        empty = b"{}"
        put_blob(c, repo, empty)
        harbor_doc = json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [{"name": "x"}]})
        put_blob(c, repo, harbor_doc.encode())
        subject = desc(OCI_MANIFEST, image)
        harbor = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": HARBOR,
            "config": desc("application/vnd.oci.empty.v1+json", empty),
            "layers": [desc(CDX, harbor_doc.encode())],
            "subject": subject,
        }
        harbor_digest = sha(put_manifest(c, repo, "harbor-sbom", harbor))
        # A client claiming to be the registry (the marker without the registry's key) gets nothing signed.
        forged = {
            **harbor,
            "artifactType": SCAN,
            "annotations": {"dev.oci-registry.generated-by": "oci-registry"},
        }
        forged_digest = sha(put_manifest(c, repo, "forged", forged))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = json.loads(cli(registry, "sbom", "list", repo).stdout)
            if any(r["digest"] == harbor_digest for r in rows):
                break
            time.sleep(0.5)
        row = next(r for r in rows if r["digest"] == harbor_digest)
        assert (row["source"], row["format"], row["components"], row["artifact_type"]) == (
            "pushed",
            "cyclonedx",
            1,
            HARBOR,
        )
        wait_for_event_subscribers(registry.data)  # the attestation subscriber has handled the forged artifact
        attestations = [d for d in referrers(c, repo, sha(image)) if d.get("artifactType") == IN_TOTO]
        attested = {d["annotations"]["dev.oci-registry.attests"] for d in attestations}
        assert forged_digest not in attested and harbor_digest not in attested
        # The two SBOMs' attestations (+ the scan report's, once the scan on push has run).
        assert sum(1 for d in attestations if "scan-report" not in d["annotations"]["predicateType"]) == 2
    # On demand: regenerate with --force adds a second pair of SBOMs.
    out = cli(registry, "sbom", "generate", f"{repo}@{sha(image)}", "--force")
    assert out.returncode == 0, out.stderr
    [generated] = json.loads(out.stdout)
    assert generated["subject"] == sha(image) and generated["platform"] == "linux/amd64"


def test_sbom_on_push_can_be_turned_off(tmp_path: Path) -> None:
    with RegistryProcess(tmp_path / "data") as proc, httpx.Client(base_url=proc.url, timeout=60) as c:
        image = push_platform(c, "supply/off", "amd64", [layer(("etc/os-release", DEBIAN_OS))])
        wait_for_event_subscribers(proc.data)  # the SBOM subscriber has handled the push
        # Nothing queued (a queued job stays until its SBOMs are pushed) and nothing generated.
        jobs = sqlite3.connect(proc.data / "supply-chain.db")
        try:
            assert jobs.execute("SELECT count(*) FROM sbom_jobs").fetchone() == (0,)
        finally:
            jobs.close()
        assert referrers(c, "supply/off", sha(image)) == []
        assert c.get("/v2/supply/off/tags/list").json().get("tags") in (None, [])
