"""Run real client binaries (skopeo, ctr, podman, buildah) against a test registry, hermetically.

Every command runs with a timeout, captured output and an environment that points the containers/image tools
at throw-away configuration (registries.conf, policy.json, auth file) rather than the host's.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.imagebuild import BuiltImage, BuiltIndex
from tests.serverproc import RegistryProcess

TIMEOUT = 120.0


def unique_repo(prefix: str) -> str:
    """A repository name no other test uses: ``e2e/PREFIX-xxxxxxxx``."""
    return f"e2e/{prefix}-{uuid.uuid4().hex[:8]}"


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    """The command, its exit code and its output, for assertion messages."""
    cmd = shlex.join(str(a) for a in proc.args)
    return f"$ {cmd}\nexit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def run(
    cmd: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    ok: bool = True,
    timeout: float = TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; with ``ok`` (default) assert it exits 0, quoting its output if not."""
    try:
        proc = subprocess.run(
            [str(a) for a in cmd],
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"timed out after {timeout}s: {shlex.join(str(a) for a in cmd)}\n{exc.stdout!r}\n{exc.stderr!r}")
    if ok:
        assert proc.returncode == 0, describe(proc)
    return proc


def need(binary: str, package: str | None = None) -> str:
    """The path of ``binary``. Missing: the test fails (in CI, or with REGISTRY_E2E_REQUIRE=1) or is skipped
    (a developer's machine without the tools), naming the Debian package. The test command installs them."""
    path = shutil.which(binary)
    if path is None:
        message = f"{binary} not installed (apt-get install {package or binary}; see .ci/install.sh --test)"
        if os.environ.get("CI") or os.environ.get("REGISTRY_E2E_REQUIRE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def containers_env(base: Path, insecure_hosts: Sequence[str] = ()) -> dict[str, str]:
    """Environment for skopeo/podman/buildah: private registries.conf, auth file and temp dir under ``base``.

    Hosts in ``insecure_hosts`` are marked ``insecure = true`` (plain HTTP allowed) in registries.conf. A permissive
    ``policy.json`` is written too; only skopeo is pointed at it (``--policy``), podman and buildah read the
    system one (``/etc/containers/policy.json`` from containers-common).
    """
    base.mkdir(parents=True, exist_ok=True)
    conf = ["unqualified-search-registries = []", 'short-name-mode = "disabled"']
    for host in insecure_hosts:
        conf += ["", "[[registry]]", f'location = "{host}"', "insecure = true"]
    (base / "registries.conf").write_text("\n".join(conf) + "\n")
    (base / "policy.json").write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    (base / "auth.json").write_text('{"auths": {}}')  # podman insists that REGISTRY_AUTH_FILE exists
    return {
        **os.environ,
        "CONTAINERS_REGISTRIES_CONF": str(base / "registries.conf"),
        "REGISTRY_AUTH_FILE": str(base / "auth.json"),
        "TMPDIR": str(base),
    }


class Skopeo:
    """``skopeo`` with a private policy and registries.conf; TLS verification off for the plain-HTTP registry."""

    def __init__(self, base: Path) -> None:
        self.binary = need("skopeo")
        self.env = containers_env(base)
        self.policy = base / "policy.json"

    def __call__(self, *args: str | Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return run([self.binary, "--policy", self.policy, *args], env=self.env, ok=ok)

    def copy(self, src: str, dest: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self("copy", "--src-tls-verify=false", "--dest-tls-verify=false", *extra, src, dest)

    def inspect(self, ref: str, *extra: str) -> dict[str, Any]:
        proc = self("inspect", "--tls-verify=false", *extra, ref)
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    def raw(self, ref: str, *extra: str) -> bytes:
        """``skopeo inspect --raw``: the manifest (or with ``--config``, the config) exactly as served."""
        return self("inspect", "--tls-verify=false", "--raw", *extra, ref).stdout.encode()

    def tags(self, ref: str) -> list[str]:
        proc = self("list-tags", "--tls-verify=false", ref)
        return list(json.loads(proc.stdout)["Tags"])


def get_blob(base_url: str, repo: str, digest: str) -> bytes:
    """GET a blob straight from the registry API (following redirects), asserting 200."""
    r = httpx.get(f"{base_url}/v2/{repo}/blobs/{digest}", follow_redirects=True, timeout=30)
    assert r.status_code == 200, f"GET blob {repo}@{digest}: {r.status_code} {r.headers} {r.text[:500]}"
    return r.content


def push_image(skopeo: Skopeo, built: BuiltImage | BuiltIndex, registry: RegistryProcess, repo: str, tag: str) -> str:
    """Copy a built layout into ``registry`` as ``repo:tag`` (``--all`` for an index); return the docker:// ref."""
    ref = f"docker://{registry.host}/{repo}:{tag}"
    skopeo.copy(built.ref, ref, *(["--all"] if isinstance(built, BuiltIndex) else []))
    return ref


def layout_blob(layout: Path, digest: str) -> bytes:
    """A blob of an OCI layout by digest."""
    return (layout / "blobs" / digest.replace(":", "/")).read_bytes()


def requests_logged(registry: RegistryProcess, method: str, path: str, status: int) -> list[str]:
    """Access-log lines (the e2e ``shared_registry`` logs every request) for ``METHOD path`` answered ``status``.

    The log shows the path without the query string; a ``POST …/blobs/uploads/`` answered 201 is a mount.
    """
    needle = f'"{method} {path} 1.1" {status} '
    return [line for line in registry.log_text().splitlines() if "registry.access" in line and needle in line]
