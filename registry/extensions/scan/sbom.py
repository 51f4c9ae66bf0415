"""CycloneDX SBOM → the packages to look up, each with its OSV ecosystem. Pure.

Reads ``components[].purl`` (nested components too). Distro packages (purl types ``deb``, ``apk``, ``rpm``) are
looked up under their SOURCE package, since distro advisories name source packages: the component properties
``registry:source-name`` / ``registry:source-version`` when present (the registry's own SBOMs), else apk's
``origin`` qualifier or the purl ``upstream`` qualifier, else the binary name and version. The release comes
from the purl ``distro`` qualifier (``debian-12``, ``alpine-3.19``) or the metadata properties
``registry:os-release-id`` / ``registry:os-release-version-id``. Third-party SBOMs with plain purls work the same.
Purls of ecosystems without an implemented version ordering (Maven, NuGet, RubyGems, …) are reported as
unmatched rather than guessed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from registry.extensions.vulndb.versions import comparator_for

CYCLONEDX_ARTIFACT_TYPE = "application/vnd.cyclonedx+json"

_LANGUAGE_ECOSYSTEMS = {
    "pypi": "PyPI",
    "npm": "npm",
    "golang": "Go",
    "cargo": "crates.io",
    "gem": "RubyGems",
    "maven": "Maven",
    "nuget": "NuGet",
    "composer": "Packagist",
}


@dataclass(frozen=True)
class Purl:
    type: str
    namespace: str
    name: str
    version: str
    qualifiers: dict[str, str]


@dataclass(frozen=True)
class Package:
    """A package to match: ``name``/``version`` are what advisories of ``ecosystem`` name."""

    ecosystem: str
    name: str
    version: str
    purl: str
    installed_name: str
    installed_version: str


def parse_purl(text: str) -> Purl | None:
    """Parse ``pkg:type/namespace/name@version?qualifiers#subpath``; None if it is not a purl."""
    if not text.startswith("pkg:"):
        return None
    rest = text[4:].lstrip("/").split("#", 1)[0]
    rest, _, query = rest.partition("?")
    rest, _, version = rest.rpartition("@") if "@" in rest.split("/")[-1] else (rest, "", "")
    parts = rest.split("/")
    if len(parts) < 2:
        return None
    qualifiers = {}
    for pair in query.split("&") if query else ():
        key, _, value = pair.partition("=")
        qualifiers[key.lower()] = unquote(value)
    return Purl(parts[0].lower(), unquote("/".join(parts[1:-1])), unquote(parts[-1]), unquote(version), qualifiers)


def _props(obj: Mapping[str, Any]) -> dict[str, str]:
    return {str(p.get("name")): str(p.get("value")) for p in obj.get("properties", ()) if isinstance(p, Mapping)}


def distro_ecosystem(purl_type: str, distro: str) -> str | None:
    """``deb`` + ``debian-12`` → ``Debian:12``; ``apk`` + ``alpine-3.19.1`` → ``Alpine:v3.19``."""
    os_id, _, version = distro.lower().partition("-")
    if not version:
        return None
    if purl_type == "deb" and os_id == "debian":
        return f"Debian:{version.split('.')[0]}"
    if purl_type == "deb" and os_id == "ubuntu":
        return f"Ubuntu:{version}"
    if purl_type == "apk" and os_id == "alpine":
        return "Alpine:v" + ".".join(version.removeprefix("v").split(".")[:2])
    if purl_type == "rpm" and os_id in ("rocky", "almalinux"):
        return f"{'Rocky Linux' if os_id == 'rocky' else 'AlmaLinux'}:{version.split('.')[0]}"
    return None


def _walk(components: Any) -> Iterator[Mapping[str, Any]]:
    for component in components or ():
        if isinstance(component, Mapping):
            yield component
            yield from _walk(component.get("components"))


def packages(sbom: Mapping[str, Any]) -> tuple[list[Package], list[str]]:
    """The matchable packages of a CycloneDX document and the purls that could not be mapped."""
    meta = _props(sbom.get("metadata") or {})
    default_distro = ""
    if meta.get("registry:os-release-id") and meta.get("registry:os-release-version-id"):
        default_distro = f"{meta['registry:os-release-id']}-{meta['registry:os-release-version-id']}"
    found: dict[tuple[str, str, str], Package] = {}
    skipped: list[str] = []
    for component in _walk(sbom.get("components")):
        text = str(component.get("purl") or "")
        purl = parse_purl(text)
        if purl is None or not purl.version:
            if text:
                skipped.append(text)
            continue
        pkg = _package(purl, text, _props(component), default_distro)
        if pkg is None:
            skipped.append(text)
        else:
            found.setdefault((pkg.ecosystem, pkg.name, pkg.version), pkg)
    return list(found.values()), skipped


def _package(purl: Purl, text: str, props: dict[str, str], default_distro: str) -> Package | None:
    if purl.type in ("deb", "apk", "rpm"):
        ecosystem = distro_ecosystem(purl.type, purl.qualifiers.get("distro") or default_distro)
        if ecosystem is None:
            return None
        source = props.get("registry:source-name") or purl.qualifiers.get("origin") or ""
        upstream = purl.qualifiers.get("upstream", "")
        if not source and upstream:
            source = upstream.split("@")[0]
        version = props.get("registry:source-version") or purl.version
        epoch = purl.qualifiers.get("epoch")
        if purl.type == "deb" and epoch and ":" not in version and "registry:source-version" not in props:
            version = f"{epoch}:{version}"
        return Package(ecosystem, source or purl.name, version, text, purl.name, purl.version)
    ecosystem = _LANGUAGE_ECOSYSTEMS.get(purl.type)
    if ecosystem is None or comparator_for(ecosystem) is None:  # no version ordering: cannot match ranges
        return None
    if purl.type == "npm" and purl.namespace:
        name = f"{purl.namespace}/{purl.name}"
    elif purl.type == "golang":
        name = f"{purl.namespace}/{purl.name}" if purl.namespace else purl.name
    elif purl.type == "maven":
        name = f"{purl.namespace}:{purl.name}"
    else:
        name = purl.name
    version = purl.version.removeprefix("v") if purl.type == "golang" else purl.version  # OSV Go: no "v"
    return Package(ecosystem, name, version, text, name, purl.version)
