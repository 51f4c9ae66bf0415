"""429 with Retry-After after repeated failures; secrets and tokens never reach the log; challenges."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.adminapi import AdminApi
from tests.api.conftest import CHEAP_ARGON2
from tests.serverproc import RegistryProcess


def test_lockout_secrets_and_challenges(tmp_path: Path) -> None:
    env = {
        **CHEAP_ARGON2,
        "REGISTRY__AUTH__FAILED_LOGIN_LIMIT": "3",
        "REGISTRY__LOG__LEVEL": "debug",
        "REGISTRY__LOG__ACCESS_LOG": "true",
    }
    with RegistryProcess(tmp_path / "data", "--auth", "token", env=env) as proc:
        with AdminApi(proc) as api:
            api.namespace("ns")
            user, secret = api.service_account("bot")
            api.grant("writer", "ns", "bot")
        token_url = f"{proc.url}/token"
        good = httpx.get(token_url, params={"scope": "repository:ns/app:pull"}, auth=(user, secret))
        assert good.status_code == 200
        token = good.json()["token"]
        assert (
            httpx.get(f"{proc.url}/v2/ns/app/tags/list", headers={"Authorization": f"Bearer {token}"}).status_code
            == 404
        )
        statuses = [httpx.get(token_url, auth=(user, "wrong")).status_code for _ in range(4)]
        assert statuses[:3] == [401, 401, 401] and statuses[3] == 429
        locked = httpx.get(token_url, auth=(user, secret))  # even the right secret waits out the lockout
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
        assert locked.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        basic = httpx.get(f"{proc.url}/v2/ns/app/tags/list", auth=(user, secret))
        assert basic.status_code == 429

        mount = httpx.post(
            f"{proc.url}/v2/ns/dst/blobs/uploads/", params={"mount": "sha256:" + "a" * 64, "from": "ns/src"}
        )
        challenge = mount.headers["www-authenticate"]
        assert mount.status_code == 401
        assert 'scope="repository:ns/dst:pull,push repository:ns/src:pull"' in challenge

        admin_cred = json.loads((proc.data / "admin-credential.json").read_text())
        log = proc.log_text()
    for secret_value in (secret, token, admin_cred["password"], token.split(".")[2]):
        assert secret_value not in log
    assert str(proc.data / "admin-credential.json") in log  # the path is logged, never the secret
