"""CycloneDX 1.6 fixtures shaped like the registry's own SBOMs (and one third-party style document)."""

from __future__ import annotations

from typing import Any


def _component(purl: str, source: tuple[str, str] | None = None) -> dict[str, Any]:
    name = purl.split("/")[-1].split("@")[0]
    version = purl.split("@")[1].split("?")[0]
    comp: dict[str, Any] = {"type": "library", "name": name, "version": version, "purl": purl}
    if source is not None:
        comp["properties"] = [
            {"name": "registry:source-name", "value": source[0]},
            {"name": "registry:source-version", "value": source[1]},
        ]
    return comp


def cyclonedx(components: list[dict[str, Any]], os_id: str = "", os_version: str = "") -> dict[str, Any]:
    metadata: dict[str, Any] = {"timestamp": "2026-11-29T00:00:00Z"}
    if os_id:
        metadata["properties"] = [
            {"name": "registry:os-release-id", "value": os_id},
            {"name": "registry:os-release-version-id", "value": os_version},
        ]
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
        "version": 1,
        "metadata": metadata,
        "components": components,
    }


def debian_sbom() -> dict[str, Any]:
    return cyclonedx(
        [
            _component(
                "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12",
                ("openssl", "3.0.11-1~deb12u2"),
            ),
            _component(
                "pkg:deb/debian/passwd@1:4.13+dfsg1-1?arch=amd64&distro=debian-12", ("shadow", "1:4.13+dfsg1-1")
            ),
            _component(
                "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12", ("zlib", "1:1.2.13.dfsg-1")
            ),
            _component("pkg:pypi/jinja2@3.1.2"),
            _component("pkg:pypi/requests@2.31.0"),
            _component("pkg:pypi/mylib@1.0rc1"),
            _component("pkg:npm/%40babel/traverse@7.22.0"),
            _component("pkg:golang/golang.org/x/net@v0.17.0"),
            _component("pkg:maven/org.example/thing@1.0"),
        ],
        "debian",
        "12",
    )


def alpine_sbom() -> dict[str, Any]:
    """Third-party style: plain purls, source package in apk's ``origin`` qualifier, release from ``distro``."""
    crypto = "pkg:apk/alpine/libcrypto3@3.1.4-r2?arch=x86_64&origin=openssl&distro=alpine-3.19.1"
    busybox = "pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1"
    return cyclonedx(
        [
            {"type": "library", "name": "libcrypto3", "purl": crypto},
            {"type": "library", "name": "busybox", "purl": busybox},
        ]
    )
