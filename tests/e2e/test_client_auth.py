"""Real clients authenticate against a registry with IAM on (Docker token flow and Basic):
skopeo --creds, ctr --user, podman login, oras-py with basic auth, and podman with the auth file taken from
a generated Kubernetes pull secret."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import oras.client  # type: ignore[import-untyped]
import pytest

from tests.api.conftest import CHEAP_ARGON2, admin
from tests.e2e.clients import Skopeo, containers_env
from tests.e2e.test_containerd import Containerd, containerd  # noqa: F401 (fixture)
from tests.e2e.test_podman import Storage
from tests.imagebuild import BuiltImage
from tests.serverproc import RegistryProcess

pytestmark = pytest.mark.e2e


@dataclass
class AuthRegistry:
    proc: RegistryProcess
    writer: tuple[str, str]
    puller_account: str

    @property
    def host(self) -> str:
        return self.proc.host

    @property
    def creds(self) -> str:
        return f"{self.writer[0]}:{self.writer[1]}"


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    with RegistryProcess(tmp_path_factory.mktemp("e2e-auth") / "data", "--auth", "token", env=CHEAP_ARGON2) as proc:
        admin(proc, "namespace", "create", "apps")
        writer = admin(proc, "service-account", "create", "ci")
        admin(proc, "grant", "writer", "--namespace", "apps", "--service-account", "ci")
        admin(proc, "service-account", "create", "cluster")
        admin(proc, "grant", "puller", "--namespace", "apps", "--service-account", "cluster")
        yield AuthRegistry(proc, (str(writer["username"]), str(writer["password"])), "cluster")


@pytest.fixture
def pushed(skopeo: Skopeo, image: BuiltImage, auth_registry: AuthRegistry) -> str:
    ref = f"docker://{auth_registry.host}/apps/web:v1"
    skopeo.copy(f"oci:{image.layout}:{image.tag}", ref, "--dest-creds", auth_registry.creds)
    return ref


@pytest.fixture
def storage(auth_registry: AuthRegistry) -> Iterator[Storage]:
    base = Path(tempfile.mkdtemp(prefix="e2e-auth-", dir="/tmp"))  # podman: runroot path < 50 characters
    try:
        env = containers_env(base / "conf", insecure_hosts=[auth_registry.host])
        (base / "conf" / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{base / "root"}"\nrunroot = "{base / "runroot"}"\n'
        )
        env["CONTAINERS_STORAGE_CONF"] = str(base / "conf" / "storage.conf")
        yield Storage(base=base, env=env)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_skopeo_with_and_without_credentials(skopeo: Skopeo, pushed: str, auth_registry: AuthRegistry) -> None:
    info = skopeo.inspect(pushed, "--creds", auth_registry.creds)
    assert info["Name"].endswith("/apps/web") and len(info["Layers"]) == 2
    anonymous = skopeo("inspect", "--tls-verify=false", pushed, ok=False)
    assert anonymous.returncode != 0 and "unauthorized" in anonymous.stderr.lower()
    wrong = skopeo("inspect", "--tls-verify=false", "--creds", f"{auth_registry.writer[0]}:nope", pushed, ok=False)
    assert wrong.returncode != 0


def test_ctr_pull_and_push_with_user(containerd: Containerd, pushed: str, auth_registry: AuthRegistry) -> None:  # noqa: F811
    ref = pushed.removeprefix("docker://")
    containerd.ctr("images", "pull", "--plain-http", "--user", auth_registry.creds, ref)
    assert ref in containerd.ctr("images", "ls", "-q").stdout.split()
    target = f"{auth_registry.host}/apps/web-copy:v1"
    containerd.ctr("images", "tag", "--force", ref, target)
    containerd.ctr("images", "push", "--plain-http", "--user", auth_registry.creds, target)
    again = containerd.ctr("images", "push", "--plain-http", target, ok=False)
    assert again.returncode != 0, "anonymous push must be refused"
    pushed_back = containerd.ctr("images", "pull", "--plain-http", "--user", auth_registry.creds, target)
    assert pushed_back.returncode == 0


def test_podman_login_push_and_pull(storage: Storage, pushed: str, auth_registry: AuthRegistry) -> None:
    host = auth_registry.host
    user, password = auth_registry.writer
    storage.podman("login", "--tls-verify=false", "-u", user, "-p", password, host)
    storage.podman("pull", "--quiet", f"{host}/apps/web:v1")
    storage.podman("tag", f"{host}/apps/web:v1", f"{host}/apps/web-podman:v2")
    storage.podman("push", "--quiet", f"{host}/apps/web-podman:v2")
    storage.podman("logout", host)
    refused = storage.podman("pull", f"{host}/apps/web-podman:v2", ok=False)
    assert refused.returncode != 0


def test_podman_with_a_generated_pull_secret(storage: Storage, pushed: str, auth_registry: AuthRegistry) -> None:
    secret = admin(
        auth_registry.proc,
        "pull-secret",
        "--service-account",
        auth_registry.puller_account,
        "--k8s-namespace",
        "apps",
        "--registry-host",
        auth_registry.host,
    )
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(str(secret["data"][".dockerconfigjson"])))  # type: ignore[index]
    assert list(config["auths"]) == [auth_registry.host]
    Path(storage.env["REGISTRY_AUTH_FILE"]).write_text(json.dumps(config))
    storage.podman("pull", "--quiet", f"{auth_registry.host}/apps/web:v1")
    # The pull secret's account may pull but not push.
    storage.podman("tag", f"{auth_registry.host}/apps/web:v1", f"{auth_registry.host}/apps/from-cluster:v1")
    assert storage.podman("push", f"{auth_registry.host}/apps/from-cluster:v1", ok=False).returncode != 0


def test_oras_with_basic_auth(auth_registry: AuthRegistry, tmp_path: Path) -> None:
    client = oras.client.OrasClient(hostname=auth_registry.host, insecure=True, auth_backend="basic")
    client.login(
        username=auth_registry.writer[0],
        password=auth_registry.writer[1],
        hostname=auth_registry.host,
        config_path=str(tmp_path / "config.json"),
    )
    note = tmp_path / "note.txt"
    note.write_bytes(b"pushed with basic auth\n")
    target = f"{auth_registry.host}/apps/notes:v1"
    response = client.push(target, files=[f"{note}:text/plain"], disable_path_validation=True)
    assert response.status_code == 201
    out = tmp_path / "out"
    pulled = client.pull(target, outdir=str(out))
    assert [Path(p).read_bytes() for p in pulled] == [note.read_bytes()]
    # (Refusals are covered by tests/authz; oras-py retries failures with multi-second sleeps.)
