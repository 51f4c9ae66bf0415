"""``/api/v1/supply-chain`` on a registry with IAM: public keys are public, the rest is admin-only."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import CHEAP_ARGON2
from tests.serverproc import SBOM_ON_PUSH, RegistryProcess
from tests.supplychain.fixtures import DEBIAN_OS, DPKG_STATUS, layer
from tests.supplychain.test_registry_e2e import CDX, IN_TOTO, SPDX, push_platform, sha, wait_for
from tests.tokenauth import DockerTokenAuth

pytestmark = pytest.mark.e2e


def test_supply_chain_management_api(tmp_path: Path) -> None:
    with RegistryProcess(tmp_path / "data", "--auth", "token", env={**CHEAP_ARGON2, **SBOM_ON_PUSH}) as proc:
        admin = json.loads((proc.data / "admin-credential.json").read_text())
        basic = (admin["username"], admin["password"])
        with httpx.Client(base_url=f"{proc.url}/api/v1", auth=basic, timeout=60) as api:
            assert api.post("/namespaces", json={"name": "sc"}).status_code == 201
        token = DockerTokenAuth(admin["username"], admin["password"])
        with httpx.Client(base_url=proc.url, auth=token, timeout=60) as c:
            image = push_platform(c, "sc/app", "amd64", [layer(("etc/os-release", DEBIAN_OS),
                                                               ("var/lib/dpkg/status", DPKG_STATUS))])  # fmt: skip
            wait_for(c, "sc/app", sha(image), {CDX: 1, SPDX: 1, IN_TOTO: 2})

        base = f"{proc.url}/api/v1/supply-chain"
        keys = httpx.get(f"{base}/keys").json()["keys"]
        assert len(keys) == 1 and keys[0]["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
        denied = httpx.get(f"{base}/sboms", params={"repository": "sc/app"})
        assert denied.status_code == 401 and denied.json()["errors"][0]["code"] == "UNAUTHORIZED"

        with httpx.Client(base_url=base, auth=basic, timeout=120) as api:
            rows = api.get("/sboms", params={"repository": "sc/app", "reference": sha(image)}).json()["sboms"]
            assert {(r["format"], r["components"]) for r in rows} == {("cyclonedx", 3), ("spdx", 3)}
            bad = api.get("/sboms", params={"repository": "Not Valid"})
            assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "NAME_INVALID"
            missing = api.get("/sboms", params={"repository": "sc/app", "reference": "nope"})
            assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
            again = api.post("/sboms", json={"repository": "sc/app", "reference": sha(image), "force": True})
            assert again.status_code == 201, again.text
            assert again.json()["generated"][0]["components"] == 3
            report = api.get("/attestations", params={"repository": "sc/app", "reference": sha(image)}).json()
            assert report["ok"] and len(report["checks"]) >= 4
