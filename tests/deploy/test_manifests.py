"""Every manifest under deploy/ validates against the Kubernetes schemas (PyPI ``kubernetes-validate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.serverproc import ROOT

K8S_VERSION = "1.30"
DEPLOY = ROOT / "deploy"
FILES = sorted(p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml")


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_manifest_validates(path: Path) -> None:
    for doc in documents(path):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_kustomizations_list_existing_files_and_every_manifest() -> None:
    listed: set[Path] = set()
    for kustomization in DEPLOY.rglob("kustomization.yaml"):
        for resource in yaml.safe_load(kustomization.read_text())["resources"]:
            target = kustomization.parent / resource
            assert target.exists(), f"{kustomization}: {resource} does not exist"
            listed.add(target.resolve())
    assert {p.resolve() for p in FILES} <= listed


def test_primary_is_one_replica_recreate_and_the_validator_rejects_a_bad_field() -> None:
    deployment = documents(DEPLOY / "primary" / "deployment.yaml")[0]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    deployment["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
