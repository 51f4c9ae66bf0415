"""Generated SBOMs are valid CycloneDX 1.6 (official JSON schema) and SPDX 2.3 (spdx-tools' parser and validator),
checked on the JSON text; and the checks do reject invalid documents. Published documents of a running registry
are checked the same way in test_registry_e2e.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from spdx_tools.spdx.parser.error import SPDXParsingError

from registry.extensions.sbom import documents
from registry.extensions.sbom.scanner import scan_layers
from tests.supplychain.schemas import cyclonedx_problems, spdx_problems
from tests.supplychain.test_detect import debian_layers, write_layers

DIGEST = "sha256:" + "a" * 64


def test_generated_documents_validate(tmp_path: Path) -> None:
    result = scan_layers(write_layers(tmp_path, debian_layers()))
    cdx = documents.cyclonedx("ns/app", DIGEST, "linux/amd64", result)
    spdx = documents.spdx("ns/app", DIGEST, "linux/amd64", result)
    assert cyclonedx_problems(cdx) == []
    assert spdx_problems(spdx) == []
    assert len(json.loads(cdx)["components"]) == len(json.loads(spdx)["packages"]) - 1 == 14  # + the image


def test_the_validators_reject_broken_documents(tmp_path: Path) -> None:
    result = scan_layers(write_layers(tmp_path, debian_layers()))
    cdx = json.loads(documents.cyclonedx("ns/app", DIGEST, "linux/amd64", result))
    cdx["components"][0]["type"] = "not-a-type"
    del cdx["components"][1]["name"]
    assert len(cyclonedx_problems(json.dumps(cdx).encode())) == 2
    spdx = json.loads(documents.spdx("ns/app", DIGEST, "linux/amd64", result))
    spdx["relationships"][0]["relatedSpdxElement"] = "SPDXRef-nowhere"
    assert any("SPDXRef-nowhere" in p for p in spdx_problems(json.dumps(spdx).encode()))
    del spdx["packages"][0]["name"]
    with pytest.raises(SPDXParsingError):
        spdx_problems(json.dumps(spdx).encode())
