"""``registry admin`` beside a running server: the set-up commands the fixtures once ran one process each
(roles, public namespaces, service accounts, credentials, grants) now run here, and their effect is checked
through the management API and the token service. The fixtures use the management API (``tests/adminapi.py``).

Grant/revoke, ``credential create --expires-in``, ``credential revoke``, ``audit`` and ``rotate-key`` through
the CLI are tested in ``test_access_matrix.py`` and ``test_tokens_http.py``.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.iam.conftest import IamRegistry, jwt_part
from tests.serverproc import BIN

ROLE, NAMESPACE, ACCOUNT = "cli-pushpull", "cli-pub", "sa-cli"


def _run_all(world: IamRegistry, *commands: tuple[str, ...]) -> list[Any]:
    """Run ``registry admin`` commands side by side (each is a process of its own); their JSON outputs."""
    procs = [
        subprocess.Popen(
            [BIN / "registry", "admin", "--data", str(world.proc.data), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=world.proc.env_for_cli(),
        )
        for args in commands
    ]
    outputs = []
    for args, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, (args, err)
        outputs.append(json.loads(out))
    return outputs


def test_admin_cli_creates_what_the_server_then_enforces(iam_registry: IamRegistry) -> None:
    world = iam_registry
    role, namespace, account = _run_all(
        world,
        ("role", "create", ROLE, "--permissions", "pull,push"),
        ("namespace", "create", NAMESPACE, "--public"),
        ("service-account", "create", ACCOUNT),
    )
    assert (role["name"], role["permissions"]) == (ROLE, ["pull", "push"]), role
    assert (namespace["name"], namespace["public"]) == (NAMESPACE, True), namespace
    assert account["name"] == ACCOUNT and account["username"] and account["password"], account
    world.keep(account["password"])
    granted, second = _run_all(
        world,
        ("grant", ROLE, "--namespace", NAMESPACE, "--service-account", ACCOUNT),
        ("credential", "create", "--service-account", ACCOUNT),
    )
    world.keep(second["password"])
    assert granted == {
        "granted": {"role": ROLE, "namespace": NAMESPACE, "subject_kind": "service-account", "subject_name": ACCOUNT}
    }
    assert second["username"] != account["username"] and second["expires"] is None, second

    # The server sees all of it at once, through its own API…
    api = world.api
    roles = {r["name"]: r for r in api.get("/api/v1/roles").json()}
    assert roles[ROLE]["permissions"] == ["pull", "push"]
    namespaces = {n["name"]: n for n in api.get("/api/v1/namespaces").json()}
    assert namespaces[NAMESPACE]["public"] is True
    assert granted["granted"] in api.get("/api/v1/bindings").json()
    usernames = {c["username"] for c in api.get(f"/api/v1/service-accounts/{ACCOUNT}/credentials").json()}
    assert {account["username"], second["username"]} <= usernames

    # …and in what it grants: both credentials get the role's actions (no more), anonymous gets pull.
    scope = f"repository:{NAMESPACE}/app:pull,push,delete"
    for username, password in ((account["username"], account["password"]), (second["username"], second["password"])):
        claims = jwt_part(world.issue((username, password), scope), 1)
        assert claims["sub"] == f"service-account:{ACCOUNT}"
        assert claims["access"] == [{"type": "repository", "name": f"{NAMESPACE}/app", "actions": ["pull", "push"]}]
    anonymous = jwt_part(world.issue(None, scope), 1)
    assert anonymous["access"] == [{"type": "repository", "name": f"{NAMESPACE}/app", "actions": ["pull"]}]
