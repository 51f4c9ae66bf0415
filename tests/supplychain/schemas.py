"""Validation of SBOM documents as published, outside the registry's code paths.

* CycloneDX 1.6: ``jsonschema`` (Draft 7) with the official CycloneDX schema files — ``bom-1.6`` and the
  ``spdx`` and ``jsf-0.82`` schemas it references — as packaged (unchanged) in cyclonedx-python-lib
  (``cyclonedx/schema/_res``, downloaded from https://github.com/CycloneDX/specification/tree/master/schema).
* SPDX 2.3: parsed from the JSON text by spdx-tools' JSON parser (``JsonLikeDictParser``: every required field
  and type) and checked by its full validator (``validate_full_spdx_document``, SPDX-2.3 rules: SPDXIDs,
  relationships, package fields, purl external references). The official SPDX 2.3 JSON *schema* file is not
  used: no package installable here ships it and it is not vendored (see docs/supply-chain.md).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

_CDX = resources.files("cyclonedx.schema") / "_res"
_CDX_BASE = "http://cyclonedx.org/schema/"


def _schema(name: str) -> Any:
    return json.loads((_CDX / name).read_text())


def cyclonedx_problems(data: bytes) -> list[str]:
    """Every JSON-schema error of a CycloneDX 1.6 JSON document (empty: valid)."""
    refs: list[tuple[str, Resource[Any]]] = [
        (_CDX_BASE + name, DRAFT7.create_resource(_schema(name)))
        for name in ("spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json")
    ]
    validator = Draft7Validator(
        _schema("bom-1.6.SNAPSHOT.schema.json"),
        registry=Registry().with_resources(refs),
        format_checker=Draft7Validator.FORMAT_CHECKER,
    )
    doc = json.loads(data)
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    if doc.get("specVersion") != "1.6":
        problems.append(f"specVersion {doc.get('specVersion')!r}, expected '1.6'")
    return problems


def spdx_problems(data: bytes) -> list[str]:
    """Every problem spdx-tools finds parsing and validating an SPDX 2.3 JSON document (empty: valid)."""
    document = JsonLikeDictParser().parse(json.loads(data))  # raises SPDXParsingError on a malformed document
    return [m.validation_message for m in validate_full_spdx_document(document, spdx_version="SPDX-2.3")]
