"""The fixture vulnerability sets (OSV, Alpine secdb, Debian tracker) against fixture SBOMs, through the CLI."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from registry.cli import main
from tests.scan.sboms import alpine_sbom, debian_sbom

DATA = Path(__file__).parent / "data"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def _findings(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(v["id"], v["package"]["name"], v["severity"]) for v in report["vulnerabilities"]}


@pytest.fixture
def imported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    data = tmp_path / "data"
    osv_zip = tmp_path / "PyPI-all.zip"
    with zipfile.ZipFile(osv_zip, "w") as archive:
        for record in json.loads((DATA / "osv-records.json").read_text()):
            archive.writestr(f"{record['id']}.json", json.dumps(record))
    files = [DATA / "debian-tracker.json", DATA / "alpine-v3.19-main.json", osv_zip]
    result = _run(capsys, "vulndb", "import", "--data", str(data), *map(str, files))
    assert result["generation"] == 1
    assert {(i["source"], i["records"]) for i in result["imported"]} == {
        ("debian", 6),
        ("alpine:v3.19/main", 6),
        ("osv", 8),
    }
    return data


def _scan_file(capsys: pytest.CaptureFixture[str], data: Path, tmp_path: Path, sbom: dict[str, Any]) -> Any:
    path = tmp_path / "sbom.json"
    path.write_text(json.dumps(sbom))
    return _run(capsys, "scan", "--data", str(data), "--sbom", str(path))


def test_debian_and_language_findings(imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _scan_file(capsys, imported, tmp_path, debian_sbom())
    assert _findings(report) == {
        # equal to fixed (CVE-2024-0001) and "not affected" (fixed 0) are absent; 1~deb12u2 < 1 is affected
        ("CVE-2024-0002", "libssl3", "HIGH"),
        ("CVE-2024-0003", "libssl3", "LOW"),
        # epoch 1 beats an epoch-less fix (CVE-2024-0004 absent); same epoch, later revision is affected
        ("CVE-2024-0005", "passwd", "MEDIUM"),
        # open, no fix; "unimportant" urgency
        ("CVE-2023-45853", "zlib1g", "NEGLIGIBLE"),
        ("GHSA-h5c8-rqwp-cp95", "jinja2", "MEDIUM"),
        ("PYSEC-2099-1", "requests", "LOW"),  # last_affected == installed; name compared in PEP 503 form
        ("PYSEC-2099-3", "mylib", "UNKNOWN"),  # 1.0rc1 < 1.0
        ("GHSA-67hx-6x53-jw92", "@babel/traverse", "CRITICAL"),  # the withdrawn record is ignored
        (
            "GO-2099-0002",
            "golang.org/x/net",
            "HIGH",
        ),  # listed in versions; the limit-bounded range does not reach 0.17.0
    }
    by_id = {v["id"]: v for v in report["vulnerabilities"]}
    assert by_id["CVE-2024-0002"]["installedVersion"] == "3.0.11-1~deb12u2"
    assert by_id["CVE-2024-0002"]["fixedVersions"] == ["3.0.13-1~deb12u1"]
    assert by_id["CVE-2024-0002"]["package"]["sourceName"] == "openssl"
    assert by_id["CVE-2024-0002"]["package"]["ecosystem"] == "Debian:12"
    assert by_id["CVE-2023-45853"]["fixedVersions"] == []
    assert by_id["GHSA-h5c8-rqwp-cp95"]["aliases"] == ["CVE-2024-22195"]
    assert report["summary"] == {"CRITICAL": 1, "HIGH": 2, "MEDIUM": 2, "LOW": 2, "NEGLIGIBLE": 1, "UNKNOWN": 1}
    assert report["unmatchedPurls"] == ["pkg:maven/org.example/thing@1.0"]
    assert report["scanner"]["vulndbGeneration"] == 1


def test_alpine_findings(imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _scan_file(capsys, imported, tmp_path, alpine_sbom())
    assert _findings(report) == {
        ("CVE-2024-1002", "libcrypto3", "UNKNOWN"),  # fixed in -r3, installed -r2
        ("CVE-2024-1003", "libcrypto3", "UNKNOWN"),  # -r10 > -r2 numerically
        ("CVE-2024-1007", "busybox", "UNKNOWN"),  # 1.36.1-r15 < 1.36.1_p1-r0 (post-release suffix)
    }
    assert {v["package"]["ecosystem"] for v in report["vulnerabilities"]} == {"Alpine:v3.19"}


def test_status_snapshots_replace_osv_adds(imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = _run(capsys, "vulndb", "status", "--data", str(imported))
    assert status["generation"] == 1
    assert {s["source"]: s["records"] for s in status["sources"]} == {"alpine:v3.19/main": 6, "debian": 6, "osv": 8}
    assert all(0 <= s["age_seconds"] < 3600 for s in status["sources"])

    # an OSV file adds or updates records by id: the earlier dump stays
    extra = json.loads((DATA / "osv-records.json").read_text())[1]
    extra["id"] = "PYSEC-2099-9"
    single = tmp_path / "one.json"
    single.write_text(json.dumps(extra))
    _run(capsys, "vulndb", "import", "--data", str(imported), str(single))
    # a secdb file is a snapshot of its source: a trimmed one replaces the earlier one
    secdb = json.loads((DATA / "alpine-v3.19-main.json").read_text())
    secdb["packages"] = secdb["packages"][1:]  # busybox only
    trimmed = tmp_path / "main.json"
    trimmed.write_text(json.dumps(secdb))
    _run(capsys, "vulndb", "import", "--data", str(imported), str(trimmed))
    status = _run(capsys, "vulndb", "status", "--data", str(imported))
    assert status["generation"] == 3
    counts = {s["source"]: s["records"] for s in status["sources"]}
    assert counts == {"alpine:v3.19/main": 2, "debian": 6, "osv": 9}
    report = _scan_file(capsys, imported, tmp_path, debian_sbom())
    assert {"PYSEC-2099-1", "PYSEC-2099-9"} <= {v["id"] for v in report["vulnerabilities"]}
    report = _scan_file(capsys, imported, tmp_path, alpine_sbom())
    assert _findings(report) == {("CVE-2024-1007", "busybox", "UNKNOWN")}


def test_import_rejects_unknown_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hello": "world"}))
    assert main(["vulndb", "import", "--data", str(tmp_path / "data"), str(bad)]) == 1
    assert "ImportFormatError" in capsys.readouterr().err
