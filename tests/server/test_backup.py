"""``registry backup`` while serving, ``registry restore`` into a new directory: fsck passes and pulls work."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from tests.edge.ocipush import push_blob, push_manifest, sha256
from tests.serverproc import BIN, RegistryProcess


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "registry"), *args], capture_output=True, text=True, timeout=300)


def test_backup_while_serving_then_restore_passes_fsck_and_serves_pulls(tmp_path: Path) -> None:
    layer = b"backup layer " * 5000
    config = b'{"architecture":"amd64","os":"linux"}'
    with RegistryProcess(tmp_path / "data") as proc:
        layer_digest = push_blob(proc.url, "ops/backup", layer)
        config_digest = push_blob(proc.url, "ops/backup", config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest,
                        "size": len(layer),
                    }
                ],
            }
        ).encode()
        push_manifest(proc.url, "ops/backup", "v1", manifest)
        done = run("backup", "--data", str(proc.data), "--to", str(tmp_path / "bak"))
        assert done.returncode == 0, done.stderr
        assert httpx.get(f"{proc.url}/readyz", timeout=10).status_code == 200  # still serving
    inventory = json.loads((tmp_path / "bak" / "inventory.json").read_text())
    assert len(inventory["blobs"]) == 2  # layer and config; the manifest lives in the database
    assert run("backup", "--data", str(proc.data), "--to", str(tmp_path / "bak")).returncode == 1  # not empty

    restored = tmp_path / "restored"
    done = run("restore", "--from", str(tmp_path / "bak"), "--data", str(restored))
    assert done.returncode == 0, done.stderr
    assert run("restore", "--from", str(tmp_path / "bak"), "--data", str(restored)).returncode == 1
    fsck = run("fsck", "--data", str(restored))
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    with RegistryProcess(restored) as again, httpx.Client(base_url=again.url, timeout=30) as client:
        accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
        got = client.get("/v2/ops/backup/manifests/v1", headers=accept)
        assert got.status_code == 200 and got.content == manifest
        assert client.get(f"/v2/ops/backup/blobs/{layer_digest}").content == layer
        assert sha256(client.get(f"/v2/ops/backup/blobs/{config_digest}").content) == config_digest


def test_restore_refuses_a_damaged_backup(tmp_path: Path) -> None:
    with RegistryProcess(tmp_path / "data") as proc:
        push_blob(proc.url, "ops/damaged", b"some blob")
        assert run("backup", "--data", str(proc.data), "--to", str(tmp_path / "bak")).returncode == 0
    blob = next(p for p in (tmp_path / "bak" / "blobs").rglob("*") if p.is_file())
    blob.write_bytes(b"tampered!")  # same size, other bytes
    done = run("restore", "--from", str(tmp_path / "bak"), "--data", str(tmp_path / "new"))
    assert done.returncode == 1 and "damaged" in done.stderr
    assert not (tmp_path / "new" / "registry.db").exists()
