"""Real clients against a registry with IAM on: skopeo ``--creds``, ``ctr --user`` (containerd's token flow,
cross-repository mounts included), ``podman login``, oras-py with Basic auth, and podman with the auth file
taken from a ``registry admin pull-secret`` Kubernetes Secret.

Accounts: ``ci`` holds ``writer`` on the private namespace ``apps``; ``cluster`` holds ``puller`` there.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import oras.client  # type: ignore[import-untyped]
import pytest

from tests.api.conftest import CHEAP_ARGON2, admin
from tests.e2e.clients import Skopeo, requests_logged
from tests.e2e.test_containerd import Containerd, containerd  # noqa: F401 (the module-scoped fixture)
from tests.e2e.test_podman import Storage, private_storage
from tests.imagebuild import BuiltImage
from tests.serverproc import RegistryProcess

pytestmark = pytest.mark.e2e

NAMESPACE = "apps"


@dataclass
class AuthRegistry:
    proc: RegistryProcess
    admin: tuple[str, str]
    writer: tuple[str, str]  # service account "ci": writer on apps
    puller: tuple[str, str]  # service account "cluster": puller on apps

    @property
    def host(self) -> str:
        return self.proc.host

    @staticmethod
    def creds(account: tuple[str, str]) -> str:
        return f"{account[0]}:{account[1]}"

    def tags(self, repo: str) -> list[str]:
        """Tags of ``repo`` as the admin sees them ([] if the repository does not exist)."""
        r = httpx.get(f"{self.proc.url}/v2/{repo}/tags/list", auth=self.admin, timeout=30)
        assert r.status_code in (200, 404), r.text
        return list(r.json()["tags"]) if r.status_code == 200 else []


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    data = tmp_path_factory.mktemp("e2e-iam") / "data"
    env = {**CHEAP_ARGON2, "REGISTRY__LOG__ACCESS_LOG": "true"}
    with RegistryProcess(data, "--auth", "token", env=env) as proc, httpx.Client(base_url=proc.url, timeout=30) as api:
        stored = json.loads((proc.data / "admin-credential.json").read_text())
        api.auth = httpx.BasicAuth(stored["username"], stored["password"])
        assert api.post("/api/v1/namespaces", json={"name": NAMESPACE}).status_code == 201
        accounts = {}
        for name, role in (("ci", "writer"), ("cluster", "puller")):
            created = api.post("/api/v1/service-accounts", json={"name": name})
            assert created.status_code == 201, created.text
            accounts[name] = (created.json()["credential"]["username"], created.json()["credential"]["password"])
            binding = {"role": role, "namespace": NAMESPACE, "subject_kind": "service-account", "subject_name": name}
            assert api.post("/api/v1/bindings", json=binding).status_code == 201
        yield AuthRegistry(proc, (stored["username"], stored["password"]), accounts["ci"], accounts["cluster"])


@pytest.fixture(scope="module")
def pushed(skopeo: Skopeo, image: BuiltImage, auth_registry: AuthRegistry) -> str:
    """``apps/web:v1``, pushed once by skopeo with the writer's credentials."""
    ref = f"docker://{auth_registry.host}/{NAMESPACE}/web:v1"
    skopeo.copy(image.ref, ref, "--dest-creds", auth_registry.creds(auth_registry.writer))
    return ref


@pytest.fixture
def storage(auth_registry: AuthRegistry) -> Iterator[Storage]:
    """containers-storage (vfs) and an auth file (REGISTRY_AUTH_FILE) of this test's own."""
    with private_storage(auth_registry.host, prefix="e2e-iam-") as store:
        yield store


def refused(output: str) -> bool:
    """Whether a client's error output says the registry refused the credentials or the access."""
    text = output.lower()
    words = ("unauthorized", "authentication required", "invalid username/password", "denied", "401", "403")
    return any(word in text for word in words)


def test_skopeo_with_and_without_credentials(
    skopeo: Skopeo, pushed: str, image: BuiltImage, auth_registry: AuthRegistry
) -> None:
    registry = auth_registry
    for account in (registry.writer, registry.puller):
        info = skopeo.inspect(pushed, "--creds", registry.creds(account))
        assert info["Digest"] == image.manifest_digest and info["Layers"] == image.layer_digests
    anonymous = skopeo("inspect", "--tls-verify=false", pushed, ok=False)
    assert anonymous.returncode != 0 and refused(anonymous.stderr), anonymous.stderr
    wrong = skopeo("inspect", "--tls-verify=false", "--creds", f"{registry.writer[0]}:not-it", pushed, ok=False)
    assert wrong.returncode != 0 and refused(wrong.stderr), wrong.stderr

    # Tag listing needs the list permission: the writer has it, the puller does not.
    listed = skopeo(
        "list-tags", "--tls-verify=false", "--creds", registry.creds(registry.writer), pushed.rsplit(":", 1)[0]
    )
    assert json.loads(listed.stdout)["Tags"] == ["v1"]
    no_list = skopeo(
        "list-tags",
        "--tls-verify=false",
        "--creds",
        registry.creds(registry.puller),
        pushed.rsplit(":", 1)[0],
        ok=False,
    )
    assert no_list.returncode != 0 and refused(no_list.stderr), no_list.stderr

    # Registry to registry: the writer may copy, the puller may not push.
    copied = f"docker://{registry.host}/{NAMESPACE}/web-copy:v1"
    creds = registry.creds(registry.writer)
    skopeo.copy(pushed, copied, "--src-creds", creds, "--dest-creds", creds)
    assert skopeo.inspect(copied, "--creds", creds)["Digest"] == image.manifest_digest
    denied = skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        registry.creds(registry.puller),
        image.ref,
        f"docker://{registry.host}/{NAMESPACE}/by-puller:v1",
        ok=False,
    )
    assert denied.returncode != 0 and refused(denied.stderr), denied.stderr
    assert registry.tags(f"{NAMESPACE}/by-puller") == []


def test_ctr_pull_and_push_with_user(
    containerd: Containerd,  # noqa: F811
    skopeo: Skopeo,
    pushed: str,
    image: BuiltImage,
    auth_registry: AuthRegistry,
) -> None:
    registry = auth_registry
    ref = pushed.removeprefix("docker://")
    anonymous = containerd.ctr("images", "pull", "--plain-http", ref, ok=False)
    assert anonymous.returncode != 0 and refused(anonymous.stderr + anonymous.stdout), anonymous.stderr
    containerd.ctr("images", "pull", "--plain-http", "--user", registry.creds(registry.puller), ref)
    assert ref in containerd.ctr("images", "ls", "-q").stdout.split()

    target = f"{registry.host}/{NAMESPACE}/from-ctr:v1"
    containerd.ctr("images", "tag", "--force", ref, target)
    for who, extra in (("anonymous", []), ("puller", ["--user", registry.creds(registry.puller)])):
        attempt = containerd.ctr("images", "push", "--plain-http", *extra, target, ok=False)
        assert attempt.returncode != 0, f"{who} push must be refused"
        assert registry.tags(f"{NAMESPACE}/from-ctr") == [], who
    containerd.ctr("images", "push", "--plain-http", "--user", registry.creds(registry.writer), target)

    info = skopeo.inspect(f"docker://{target}", "--creds", registry.creds(registry.writer))
    assert info["Digest"] == image.manifest_digest
    # containerd asked for a token covering the source repository too (the mount challenge names it), so the
    # layers were mounted from apps/web rather than uploaded again.
    mounts = requests_logged(registry.proc, "POST", f"/v2/{NAMESPACE}/from-ctr/blobs/uploads/", 201)
    assert len(mounts) >= len(image.layers), registry.proc.log_text()[-3000:]
    # containerd logs in with the OAuth2 form (POST /token) when it has credentials.
    assert [line for line in registry.proc.log_text().splitlines() if '"POST /token 1.1" 200' in line]


def test_podman_login_push_pull_logout(
    storage: Storage, pushed: str, image: BuiltImage, auth_registry: AuthRegistry
) -> None:
    registry, host = auth_registry, auth_registry.host
    user, password = registry.writer
    auth_file = Path(storage.env["REGISTRY_AUTH_FILE"])
    bad = storage.podman("login", "--tls-verify=false", "-u", user, "-p", "not-it", host, ok=False)
    assert bad.returncode != 0 and refused(bad.stderr), bad.stderr
    storage.podman("login", "--tls-verify=false", "-u", user, "-p", password, host)
    saved = json.loads(auth_file.read_text())["auths"][host]["auth"]
    assert base64.b64decode(saved).decode() == f"{user}:{password}"

    storage.podman("pull", "--quiet", f"{host}/{NAMESPACE}/web:v1")
    storage.podman("tag", f"{host}/{NAMESPACE}/web:v1", f"{host}/{NAMESPACE}/from-podman:v2")
    storage.podman("push", "--quiet", f"{host}/{NAMESPACE}/from-podman:v2")
    assert registry.tags(f"{NAMESPACE}/from-podman") == ["v2"]

    storage.podman("logout", host)
    assert host not in json.loads(auth_file.read_text()).get("auths", {})
    storage.podman("rmi", "--all", "--force")
    again = storage.podman("pull", f"{host}/{NAMESPACE}/from-podman:v2", ok=False)
    assert again.returncode != 0 and refused(again.stderr), again.stderr


def test_oras_with_basic_auth(
    pushed: str, auth_registry: AuthRegistry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = auth_registry
    config = tmp_path / "docker-config.json"
    client = oras.client.OrasClient(hostname=registry.host, insecure=True, auth_backend="basic")
    client.login(
        username=registry.writer[0], password=registry.writer[1], hostname=registry.host, config_path=str(config)
    )
    assert registry.host in json.loads(config.read_text())["auths"]

    note = tmp_path / "note.txt"
    note.write_bytes(b"an artifact pushed with Basic auth\n")
    target = f"{registry.host}/{NAMESPACE}/notes:v1"
    pushed_artifact = client.push(
        target, config_path=str(config), files=[f"{note}:text/plain"], disable_path_validation=True, quiet=True
    )
    assert pushed_artifact.status_code == 201, pushed_artifact.text
    assert registry.tags(f"{NAMESPACE}/notes") == ["v1"]
    pulled = client.pull(target, config_path=str(config), outdir=str(tmp_path / "out"))
    assert [Path(p).read_bytes() for p in pulled] == [note.read_bytes()]

    # Wrong credentials are refused (a Basic client without any credentials fails inside oras-py, retrying for
    # minutes, before it sends anything: not a registry test).
    stranger = oras.client.OrasClient(hostname=registry.host, insecure=True, auth_backend="basic")
    stranger.auth.set_basic_auth(registry.writer[0], "not-the-secret")
    caplog.clear()
    with pytest.raises(ValueError, match="/manifests/v1"):
        stranger.pull(target, config_path=str(tmp_path / "none.json"), outdir=str(tmp_path / "nope"))
    assert "invalid username or password" in caplog.text  # the registry's error message, logged by oras-py
    assert not (tmp_path / "nope" / "note.txt").exists()
    # The puller may pull the artifact but not push one.
    puller = oras.client.OrasClient(hostname=registry.host, insecure=True, auth_backend="basic")
    puller.auth.set_basic_auth(*registry.puller)
    again = puller.pull(target, config_path=str(tmp_path / "none.json"), outdir=str(tmp_path / "puller"))
    assert [Path(p).read_bytes() for p in again] == [note.read_bytes()]
    with pytest.raises(ValueError, match=r"DENIED.*may not pull,push"):
        puller.push(
            f"{registry.host}/{NAMESPACE}/by-puller:v1",
            config_path=str(tmp_path / "none.json"),
            files=[f"{note}:text/plain"],
            disable_path_validation=True,
            quiet=True,
        )
    assert registry.tags(f"{NAMESPACE}/by-puller") == []


def test_podman_with_a_generated_pull_secret(
    storage: Storage, pushed: str, image: BuiltImage, auth_registry: AuthRegistry
) -> None:
    registry, host = auth_registry, auth_registry.host
    secret = admin(
        registry.proc, "pull-secret", "--service-account", "cluster", "--k8s-namespace", "prod", "--registry-host", host
    )
    assert secret["apiVersion"] == "v1" and secret["kind"] == "Secret"
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["metadata"] == {"name": "registry-cluster", "namespace": "prod"}
    config = json.loads(base64.b64decode(str(secret["data"][".dockerconfigjson"])))  # type: ignore[index]
    entry = config["auths"][host]
    assert list(config["auths"]) == [host]
    assert base64.b64decode(entry["auth"]).decode() == f"{entry['username']}:{entry['password']}"
    assert entry["username"] != registry.puller[0], "a pull secret carries a credential of its own"

    Path(storage.env["REGISTRY_AUTH_FILE"]).write_text(json.dumps(config))
    storage.podman("pull", "--quiet", f"{host}/{NAMESPACE}/web:v1")
    [info] = json.loads(storage.podman("image", "inspect", f"{host}/{NAMESPACE}/web:v1").stdout)
    assert info["Digest"] == image.manifest_digest
    # The pull secret's account may pull but not push.
    storage.podman("tag", f"{host}/{NAMESPACE}/web:v1", f"{host}/{NAMESPACE}/from-cluster:v1")
    push = storage.podman("push", f"{host}/{NAMESPACE}/from-cluster:v1", ok=False)
    assert push.returncode != 0 and refused(push.stderr), push.stderr
    assert registry.tags(f"{NAMESPACE}/from-cluster") == []
    # Revoking the pull secret's credential cuts the cluster off.
    admin(registry.proc, "credential", "revoke", entry["username"])
    storage.podman("rmi", "--all", "--force")
    after = storage.podman("pull", f"{host}/{NAMESPACE}/web:v1", ok=False)
    assert after.returncode != 0 and refused(after.stderr), after.stderr
