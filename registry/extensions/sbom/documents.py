"""Scan results → package URLs, a CycloneDX 1.6 JSON document and an SPDX 2.3 JSON document (both validated).

CycloneDX conventions the scanner (issue 9 part 2) consumes: every component has a ``purl``; distro packages
carry the qualifier ``distro=<os id>-<version id>`` and the properties ``registry:source-name`` /
``registry:source-version``; the metadata has ``registry:os-release-id`` / ``registry:os-release-version-id``.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL
from spdx_tools.spdx.model.actor import Actor, ActorType
from spdx_tools.spdx.model.document import CreationInfo, Document
from spdx_tools.spdx.model.package import ExternalPackageRef, ExternalPackageRefCategory, Package
from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

TOOL = "oci-registry"
DISTRO_TYPES = frozenset({"deb", "apk", "rpm"})


class InvalidDocument(ValueError):
    """A generated document failed schema validation (a bug: it is never published)."""


def distro(os_release: dict[str, str]) -> str | None:
    """``debian-12``, ``alpine-3.19`` (Alpine's point releases share one secdb branch), ``fedora-39``."""
    os_id, version = os_release.get("ID"), os_release.get("VERSION_ID")
    if not os_id or not version:
        return None
    if os_id == "alpine":
        version = ".".join(version.split(".")[:2])
    return f"{os_id}-{version}"


def purl(package: dict[str, Any], os_release: dict[str, str]) -> PackageURL:
    kind = package["type"]
    qualifiers: dict[str, str] = {}
    namespace = package.get("namespace")
    if kind in DISTRO_TYPES:
        namespace = os_release.get("ID") or {"deb": "debian", "apk": "alpine", "rpm": "redhat"}[kind]
        if package.get("arch"):
            qualifiers["arch"] = package["arch"]
        name = distro(os_release)
        if name:
            qualifiers["distro"] = name
        if kind == "rpm" and package.get("epoch"):
            qualifiers["epoch"] = str(package["epoch"])
    name = package["name"]
    version = package["version"]
    if kind == "rpm" and package.get("epoch"):
        version = version.split(":", 1)[-1]
    if kind == "npm" and name.startswith("@") and "/" in name:
        namespace, name = name.split("/", 1)
    if kind == "pypi":
        name = name.lower().replace("_", "-")
    if kind == "golang" and "/" in name:
        namespace, name = name.rsplit("/", 1)
    return PackageURL(type=kind, namespace=namespace, name=name, version=version, qualifiers=qualifiers or None)


def _dedupe(packages: list[dict[str, Any]], os_release: dict[str, str]) -> list[tuple[dict[str, Any], str]]:
    out: dict[str, tuple[dict[str, Any], str]] = {}
    for package in packages:
        text = purl(package, os_release).to_string()
        out.setdefault(f"{text}#{package.get('path', '')}", (package, text))
    return sorted(out.values(), key=lambda item: (item[1], item[0].get("path", "")))


def cyclonedx(subject: str, digest: str, platform: str, result: dict[str, Any]) -> bytes:
    os_release: dict[str, str] = result.get("os", {})
    meta_props = [Property(name="registry:platform", value=platform)] if platform else []
    if os_release.get("ID"):
        meta_props.append(Property(name="registry:os-release-id", value=os_release["ID"]))
    if os_release.get("VERSION_ID"):
        meta_props.append(Property(name="registry:os-release-version-id", value=os_release["VERSION_ID"]))
    root = Component(name=subject, version=digest, type=ComponentType.CONTAINER, bom_ref=f"image:{digest}")
    bom = Bom(metadata=BomMetaData(component=root, properties=meta_props, timestamp=datetime.now(UTC)))
    bom.serial_number = uuid.uuid4()
    components = []
    for i, (package, text) in enumerate(_dedupe(result.get("packages", []), os_release)):
        props = []
        if package.get("source_name"):
            props.append(Property(name="registry:source-name", value=package["source_name"]))
        if package.get("source_version"):
            props.append(Property(name="registry:source-version", value=str(package["source_version"])))
        if package.get("path"):
            props.append(Property(name="registry:path", value=package["path"]))
        component = Component(
            name=package["name"],
            group=package.get("namespace"),
            version=package["version"],
            purl=PackageURL.from_string(text),
            bom_ref=f"{text}#{i}",
            properties=props,
        )
        bom.components.add(component)
        components.append(component)
    bom.register_dependency(root, components)
    text = JsonV1Dot6(bom).output_as_string(indent=None)
    # Imported here: the JSON-schema stack (jsonschema → rfc3987_syntax builds a grammar at import) costs
    # seconds, and every `registry` command imports this module through the CLI's parser.
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise InvalidDocument(f"CycloneDX: {error}")
    return text.encode()


def _spdx_id(i: int) -> str:
    return f"SPDXRef-Package-{i}"


def spdx(subject: str, digest: str, platform: str, result: dict[str, Any]) -> bytes:
    os_release: dict[str, str] = result.get("os", {})
    info = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name=f"{subject}@{digest}" + (f" ({platform})" if platform else ""),
        document_namespace=f"https://oci-registry.invalid/spdx/{digest.replace(':', '-')}/{uuid.uuid4()}",
        creators=[Actor(ActorType.TOOL, TOOL)],
        created=datetime.now(UTC).replace(microsecond=0, tzinfo=None),
    )
    image = Package(
        spdx_id="SPDXRef-Image",
        name=subject,
        download_location=SpdxNoAssertion(),
        version=digest,
        files_analyzed=False,
        primary_package_purpose=None,
    )
    packages = [image]
    relationships = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, "SPDXRef-Image")]
    for i, (package, text) in enumerate(_dedupe(result.get("packages", []), os_release)):
        packages.append(
            Package(
                spdx_id=_spdx_id(i),
                name=package["name"],
                download_location=SpdxNoAssertion(),
                version=str(package["version"]),
                files_analyzed=False,
                external_references=[ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", text)],
            )
        )
        relationships.append(Relationship("SPDXRef-Image", RelationshipType.CONTAINS, _spdx_id(i)))
    document = Document(creation_info=info, packages=packages, relationships=relationships)
    problems = validate_full_spdx_document(document)
    if problems:
        raise InvalidDocument(f"SPDX: {problems[0].validation_message}")
    out = io.StringIO()
    write_document_to_stream(document, out, validate=False)
    return json.dumps(json.loads(out.getvalue()), separators=(",", ":")).encode()
