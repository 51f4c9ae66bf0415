"""IamService against a real SQLite store: bootstrap, credentials, authentication, limits, audit."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from registry.iam.model import ALL_NAMESPACES, Binding
from registry.iam.policy import grant_scopes, repository_actions
from registry.iam.ratelimit import FailureLimiter
from registry.iam.secrets import CHEAP, SecretHasher, VerifiedCache
from registry.iam.service import AuthFailure, IamService
from registry.iam.store import IamError, SqliteIamStore
from registry.oci.scope import Scope
from registry.storage.sqlite_db import open_database


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[IamService, Clock]]:
    db = await open_database(tmp_path / "registry.db")
    clock = Clock()
    service = IamService(
        SqliteIamStore(db),
        SecretHasher(CHEAP),
        VerifiedCache(),
        FailureLimiter(3, 60, 60),
        clock,
        source_limiter=FailureLimiter(6, 60, 60),
    )
    await service.store.ensure_builtin_roles()
    yield service, clock
    await db.aclose()


async def test_bootstrap_writes_a_private_admin_credential_once(
    setup: tuple[IamService, Clock], tmp_path: Path
) -> None:
    iam, _ = setup
    path = await iam.bootstrap(tmp_path, "")
    assert path is not None and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    cred = json.loads(path.read_text())
    identity = await iam.authenticate(cred["username"], cred["password"], "10.0.0.1")
    assert identity.admin and identity.grants[ALL_NAMESPACES] >= {"pull", "push", "list", "delete"}
    assert await iam.bootstrap(tmp_path, "") is None  # not again


async def test_authentication_states_and_rate_limits(setup: tuple[IamService, Clock]) -> None:
    iam, clock = setup
    await iam.create_namespace("apps")
    await iam.create_principal("service-account", "ci")
    await iam.set_binding(Binding("writer", "apps", "service-account", "ci"), True)
    issued = await iam.create_credential("service-account", "ci", expires_in=100)
    user, secret = issued.credential.username, issued.password
    identity = await iam.authenticate(user, secret, "10.0.0.1")
    assert repository_actions(identity, "apps/web", {"apps": False}.get) == {"pull", "push", "list"}
    granted = grant_scopes(identity, [Scope("repository", "apps/web", ("pull", "push", "delete"))], {"apps": False}.get)
    assert granted == [Scope("repository", "apps/web", ("pull", "push"))]
    for bad in ("wrong", "", secret + "x"):
        with pytest.raises(AuthFailure):
            await iam.authenticate(user, bad, "10.0.0.2")
    with pytest.raises(AuthFailure) as locked:  # 3 failures of this credential: locked, even with the secret
        await iam.authenticate(user, secret, "10.0.0.3")
    assert locked.value.retry_after is not None
    clock.now += 61
    assert (await iam.authenticate(user, secret, "10.0.0.1")).name == "ci"
    clock.now += 100  # expired
    with pytest.raises(AuthFailure, match="expired"):
        await iam.authenticate(user, secret, "10.0.0.1")


async def test_revocation_beats_the_verified_cache(setup: tuple[IamService, Clock]) -> None:
    iam, _ = setup
    await iam.create_principal("user", "alice")
    issued = await iam.create_credential("user", "alice")
    user, secret = issued.credential.username, issued.password
    await iam.authenticate(user, secret, "10.0.0.1")
    assert iam.cache.get(user, secret, iam.clock(), await iam.store.generation())
    await iam.store.revoke_credential(user, iam.clock())  # as the CLI in another process would
    with pytest.raises(AuthFailure, match="revoked"):
        await iam.authenticate(user, secret, "10.0.0.1")


async def test_source_limit_is_more_lenient(setup: tuple[IamService, Clock]) -> None:
    iam, _ = setup
    await iam.create_principal("user", "bob")
    issued = await iam.create_credential("user", "bob")
    for i in range(5):  # five different unknown users fail from one address: not locked yet
        with pytest.raises(AuthFailure):
            await iam.authenticate(f"nobody-{i}", "x", "192.0.2.1")
    assert (await iam.authenticate(issued.credential.username, issued.password, "192.0.2.1")).name == "bob"
    with pytest.raises(AuthFailure):
        await iam.authenticate("nobody-x", "x", "192.0.2.1")
    with pytest.raises(AuthFailure) as locked:
        await iam.authenticate(issued.credential.username, issued.password, "192.0.2.1")
    assert locked.value.retry_after is not None


async def test_validation_errors(setup: tuple[IamService, Clock]) -> None:
    iam, _ = setup
    with pytest.raises(IamError) as err:
        await iam.create_namespace("Not Valid")
    assert err.value.kind == "invalid"
    with pytest.raises(IamError) as err:
        await iam.create_role("r", "pull,fly")
    assert err.value.kind == "invalid"
    with pytest.raises(IamError) as err:
        await iam.set_binding(Binding("writer", "nowhere", "user", "nobody"), True)
    assert err.value.kind == "not_found"
    with pytest.raises(IamError) as err:
        await iam.store.delete_role("admin")
    assert err.value.kind == "invalid"
