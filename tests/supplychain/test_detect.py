"""Detectors over a merged view of layers with real package databases: exactly the packages present."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from registry.extensions.sbom import documents
from registry.extensions.sbom.scanner import scan_layers
from tests.supplychain.fixtures import (
    APK_INSTALLED,
    DEBIAN_OS,
    DISTROLESS_STATUS,
    DPKG_STATUS,
    FEDORA_OS,
    GO_MODINFO,
    RPM_PACKAGES,
    F,
    go_binary_fixture,
    jar,
    layer,
    opaque,
    pom_properties,
    rpmdb_sqlite,
    whiteout,
)

METADATA = b"Metadata-Version: 2.1\nName: Requests\nVersion: 2.31.0\nSummary: HTTP\n\nbody\n"
PKG_INFO = b"Metadata-Version: 1.1\nName: six\nVersion: 1.16.0\n"


def go_binary() -> bytes:
    """The build-info fixture (Go is not installed here; test_real_go_binary builds one when it is)."""
    return go_binary_fixture("go1.21.5", GO_MODINFO)


def debian_layers() -> list[bytes]:
    inner = jar(dict([pom_properties("com.google.guava", "guava", "32.1.3-jre")]))
    fat = jar(dict([pom_properties("org.example", "app", "1.0.0"), ("BOOT-INF/lib/guava.jar", inner)]))
    base = layer(
        ("usr/lib/os-release", DEBIAN_OS),
        F("etc/os-release", link="../usr/lib/os-release"),
        ("var/lib/dpkg/status", DPKG_STATUS),
        ("var/lib/dpkg/status.d/tzdata", DISTROLESS_STATUS),
        ("usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA", METADATA),
        ("usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO", PKG_INFO),
        ("usr/lib/python3/dist-packages/gone-1.0.dist-info/METADATA", b"Name: gone\nVersion: 1.0\n"),
        ("app/node_modules/express/package.json", json.dumps({"name": "express", "version": "4.18.2"}).encode()),
        ("app/node_modules/@babel/core/package.json", b'{"name": "@babel/core", "version": "7.23.0"}'),
        ("app/node_modules/express/lib/package.json", b'{"name": "not-a-package", "version": "0"}'),
        ("app/package.json", b'{"name": "the-app", "version": "1.0.0"}'),
        ("old/node_modules/left-pad/package.json", b'{"name": "left-pad", "version": "1.3.0"}'),
        ("opt/app.jar", fat),
        F("usr/local/bin/hello", go_binary(), mode=0o755),
    )
    top = layer(
        whiteout("usr/lib/python3/dist-packages/gone-1.0.dist-info"),
        F("old", dir=True),
        opaque("old"),
        ("old/readme", b"nothing here"),
    )
    return [base, top]


EXPECTED_DEBIAN = {
    "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12",
    "pkg:deb/debian/libssl3@3.0.11-1~deb12u2%2Bb1?arch=amd64&distro=debian-12",
    "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12",
    "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12",
    "pkg:pypi/requests@2.31.0",
    "pkg:pypi/six@1.16.0",
    "pkg:npm/express@4.18.2",
    "pkg:npm/%40babel/core@7.23.0",
    "pkg:maven/org.example/app@1.0.0",
    "pkg:maven/com.google.guava/guava@32.1.3-jre",
    "pkg:golang/stdlib@go1.21.5",
    "pkg:golang/example.com/hello@%28devel%29",
    "pkg:golang/github.com/google/uuid@v1.6.0",
    "pkg:golang/golang.org/x/text@v0.14.0",
}


def write_layers(tmp_path: Path, layers: list[bytes], compress: bool = True) -> list[str]:
    paths = []
    for i, data in enumerate(layers):
        path = tmp_path / f"layer{i}"
        path.write_bytes(gzip.compress(data) if compress and i % 2 == 0 else data)
        paths.append(str(path))
    return paths


def purls(result: dict[str, object]) -> set[str]:
    packages = result["packages"]
    assert isinstance(packages, list)
    os_release = result["os"]
    assert isinstance(os_release, dict)
    return {documents.purl(p, os_release).to_string() for p in packages}


def test_debian_image_lists_exactly_the_merged_packages(tmp_path: Path) -> None:
    result = scan_layers(write_layers(tmp_path, debian_layers()))
    assert result["os"]["ID"] == "debian" and result["os"]["VERSION_ID"] == "12"
    assert purls(result) == EXPECTED_DEBIAN
    by_name = {p["name"]: p for p in result["packages"]}
    assert by_name["libssl3"]["source_name"] == "openssl"
    assert by_name["libssl3"]["source_version"] == "3.0.11-1~deb12u2"
    assert by_name["libc6"]["source_name"] == "glibc"
    assert by_name["libc6"]["source_version"] == "2.36-9+deb12u4"


def test_alpine_and_rpm(tmp_path: Path) -> None:
    alpine = scan_layers(
        write_layers(tmp_path, [layer(("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n"),
                                      ("lib/apk/db/installed", APK_INSTALLED))])
    )  # fmt: skip
    assert purls(alpine) == {
        "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19",
        "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19",
    }
    assert {p["name"]: p["source_name"] for p in alpine["packages"]}["libcrypto3"] == "openssl"
    (tmp_path / "rpm").mkdir()
    fedora = scan_layers(
        write_layers(
            tmp_path / "rpm",
            [layer(("etc/os-release", FEDORA_OS), ("var/lib/rpm/rpmdb.sqlite", rpmdb_sqlite(RPM_PACKAGES)))],
        )
    )
    assert purls(fedora) == {
        "pkg:rpm/fedora/bash@5.2.21-1.fc39?arch=x86_64&distro=fedora-39",
        "pkg:rpm/fedora/openssl-libs@3.1.1-4.fc39?arch=x86_64&distro=fedora-39&epoch=1",
    }
    ssl = next(p for p in fedora["packages"] if p["name"] == "openssl-libs")
    assert (ssl["source_name"], ssl["source_version"], ssl["version"]) == (
        "openssl",
        "1:3.1.1-4.fc39",
        "1:3.1.1-4.fc39",
    )


def test_berkeleydb_and_ndb_are_reported_unsupported(tmp_path: Path) -> None:
    result = scan_layers(
        write_layers(
            tmp_path, [layer(("var/lib/rpm/Packages", b"\0" * 64), ("usr/lib/sysimage/rpm/Packages.db", b"x"))]
        )
    )
    assert result["packages"] == []
    notes = " ".join(result["notes"])
    assert "BerkeleyDB database is not supported" in notes and "ndb database is not supported" in notes


def test_worker_process_and_memory_bound(tmp_path: Path) -> None:
    paths = write_layers(tmp_path, debian_layers())
    request = json.dumps({"layers": paths, "memory_mb": 1024})
    out = subprocess.run(
        [sys.executable, "-m", "registry.extensions.sbom.worker"], input=request.encode(), capture_output=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert purls(json.loads(out.stdout)) == EXPECTED_DEBIAN
    # A layer that is not a tar fails cleanly with a JSON error, not a traceback on stdout.
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x28\xb5\x2f\xfd zstd")
    out = subprocess.run(
        [sys.executable, "-m", "registry.extensions.sbom.worker"], input=json.dumps({"layers": [str(bad)]}).encode(),
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 2 and "zstd" in json.loads(out.stdout)["error"]


def test_documents_validate_and_carry_the_scanner_contract(tmp_path: Path) -> None:
    result = scan_layers(write_layers(tmp_path, debian_layers()))
    cdx = json.loads(documents.cyclonedx("ns/app", "sha256:" + "a" * 64, "linux/amd64", result))
    assert cdx["bomFormat"] == "CycloneDX" and cdx["specVersion"] == "1.6"
    assert {c["purl"] for c in cdx["components"]} == EXPECTED_DEBIAN
    meta = {p["name"]: p["value"] for p in cdx["metadata"]["properties"]}
    assert meta["registry:os-release-id"] == "debian" and meta["registry:os-release-version-id"] == "12"
    ssl = next(c for c in cdx["components"] if c["name"] == "libssl3")
    props = {p["name"]: p["value"] for p in ssl["properties"]}
    assert props["registry:source-name"] == "openssl" and props["registry:source-version"] == "3.0.11-1~deb12u2"
    spdx = json.loads(documents.spdx("ns/app", "sha256:" + "a" * 64, "linux/amd64", result))
    assert spdx["spdxVersion"] == "SPDX-2.3"
    refs = {r["referenceLocator"] for p in spdx["packages"] for r in p.get("externalRefs", [])}
    assert refs == EXPECTED_DEBIAN


@pytest.mark.skipif(shutil.which("go") is None, reason="Go is not installed; the build-info fixture is used")
def test_real_go_binary(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "go.mod").write_text("module example.com/hello\n\ngo 1.19\n")
    (src / "main.go").write_text('package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hi") }\n')
    env = {"GOFLAGS": "-mod=mod", "GOCACHE": str(tmp_path / "cache"), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    subprocess.run(["go", "build", "-o", "hello", "."], cwd=src, env=env, check=True, timeout=600)
    data = (src / "hello").read_bytes()
    result = scan_layers(write_layers(tmp_path, [layer(F("bin/hello", data, mode=0o755))]))
    toolchain = subprocess.run(["go", "env", "GOVERSION"], env=env, capture_output=True, text=True, check=True)
    assert purls(result) == {
        f"pkg:golang/stdlib@{toolchain.stdout.strip()}",
        "pkg:golang/example.com/hello@%28devel%29",
    }


def test_worker_memory_limit_fails_cleanly(tmp_path: Path) -> None:
    """A 250 MiB jar (zeros, tiny once gzip'ed) exceeds a 200 MiB worker: the worker fails, not the caller."""
    path = tmp_path / "big.tar.gz"
    with gzip.open(path, "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        info = tarfile.TarInfo("opt/big.jar")
        info.size = 250 * 1024 * 1024
        with open("/dev/zero", "rb") as zeros:
            tar.addfile(info, zeros)
    request = json.dumps({"layers": [str(path)], "memory_mb": 200})
    out = subprocess.run(
        [sys.executable, "-m", "registry.extensions.sbom.worker"], input=request.encode(), capture_output=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 3, out.stderr[-2000:]
    assert json.loads(out.stdout) == {"error": "worker memory limit exceeded"}
