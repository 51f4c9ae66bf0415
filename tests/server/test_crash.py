"""kill -9 during pushes loses no acknowledged blob, shows nothing partial, and fsck stays clean.

kill -9 alone cannot prove durability against power loss (the page cache survives it); that part rests
on the fsync ordering documented in registry/storage/fs_blobs.py. These tests prove crash consistency.
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import threading
import time
from pathlib import Path

import httpx

from tests.serverproc import BIN, RegistryProcess

MIB = 1024 * 1024


def _blob(i: int, size: int) -> tuple[bytes, str]:
    data = hashlib.sha256(str(i).encode()).digest() * (size // 32) + str(i).encode()
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def _push_monolithic(url: str, repo: str, data: bytes, digest: str) -> bool:
    with httpx.Client(base_url=url, timeout=30) as client:
        r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
        return r.status_code == 201


def _push_chunked(url: str, repo: str, data: bytes, digest: str) -> bool:
    with httpx.Client(base_url=url, timeout=30) as client:
        r = client.post(f"/v2/{repo}/blobs/uploads/")
        location = r.headers["location"]
        step = max(len(data) // 4, 1)
        for start in range(0, len(data), step):
            chunk = data[start : start + step]
            r = client.patch(location, content=chunk, headers={"Content-Range": f"{start}-{start + len(chunk) - 1}"})
            if r.status_code != 202:
                return False
            location = r.headers["location"]
        return client.put(location, params={"digest": digest}).status_code == 201


def _fsck(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BIN / "registry", "fsck", "--data", data_dir], capture_output=True, text=True, timeout=120)


def test_kill9_during_concurrent_pushes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    rng = random.Random(1234)
    acknowledged: dict[str, tuple[str, bytes]] = {}
    attempted: dict[str, tuple[str, bytes]] = {}
    lock = threading.Lock()
    counter = iter(range(10**6))
    for round_no in range(3):
        proc = RegistryProcess(data_dir).start()
        stop = threading.Event()

        def worker(url: str = proc.url, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                i = next(counter)
                data, digest = _blob(i, rng.choice([1024, 256 * 1024, 3 * MIB]))
                repo = f"crash/r{i % 3}"
                with lock:
                    attempted[digest] = (repo, data)
                try:
                    ok = (_push_chunked if i % 2 else _push_monolithic)(url, repo, data, digest)
                except httpx.HTTPError:
                    return
                if ok:
                    with lock:
                        acknowledged[digest] = (repo, data)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.8 + rng.random())
        proc.kill()
        stop.set()
        for t in threads:
            t.join(60)

        # Restart: every acknowledged blob is intact; anything else is absent or complete, never partial.
        with RegistryProcess(data_dir) as again, httpx.Client(base_url=again.url, timeout=30) as client:
            for digest, (repo, data) in attempted.items():
                r = client.get(f"/v2/{repo}/blobs/{digest}")
                if digest in acknowledged:
                    assert r.status_code == 200, f"round {round_no}: acknowledged {digest} lost"
                if r.status_code == 200:
                    assert r.content == data, f"round {round_no}: {digest} served wrong bytes"
                else:
                    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
        report = _fsck(data_dir)
        assert report.returncode == 0, report.stdout + report.stderr
    assert len(acknowledged) > 10, f"only {len(acknowledged)} pushes acknowledged: the test proved little"


def test_upload_session_survives_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data, digest = _blob(7, 2 * MIB)
    with RegistryProcess(data_dir) as proc, httpx.Client(base_url=proc.url, timeout=30) as client:
        location = client.post("/v2/resume/app/blobs/uploads/").headers["location"]
        r = client.patch(location, content=data[:MIB], headers={"Content-Range": f"0-{MIB - 1}"})
        assert r.status_code == 202 and r.headers["range"] == f"0-{MIB - 1}"
        proc.kill()
    with RegistryProcess(data_dir) as proc, httpx.Client(base_url=proc.url, timeout=30) as client:
        status = client.get(location)
        assert status.status_code == 204 and status.headers["range"] == f"0-{MIB - 1}"
        stale = client.patch(location, content=data[:10], headers={"Content-Range": "0-9"})
        assert stale.status_code == 416 and stale.headers["range"] == f"0-{MIB - 1}"
        r = client.patch(location, content=data[MIB:], headers={"Content-Range": f"{MIB}-{len(data) - 1}"})
        assert r.status_code == 202, r.text
        done = client.put(r.headers["location"], params={"digest": digest})
        assert done.status_code == 201, done.text
        assert client.get(f"/v2/resume/app/blobs/{digest}").content == data


def test_fsck_reports_a_corrupted_and_a_missing_blob(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    blobs = [_blob(i, 4096) for i in range(3)]
    with RegistryProcess(data_dir) as proc:
        for data, digest in blobs:
            assert _push_monolithic(proc.url, "fsck/app", data, digest)
    clean = _fsck(data_dir)
    assert clean.returncode == 0 and "clean" in clean.stdout, clean.stdout
    corrupt_hex = blobs[0][1].split(":")[1]
    path = data_dir / "blobs" / "sha256" / corrupt_hex[:2] / corrupt_hex
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF
    path.write_bytes(bytes(raw))
    missing_hex = blobs[1][1].split(":")[1]
    (data_dir / "blobs" / "sha256" / missing_hex[:2] / missing_hex).unlink()
    report = _fsck(data_dir)
    assert report.returncode == 1, report.stdout
    assert f"blob {blobs[0][1]}: content is corrupt" in report.stdout
    assert f"blob {blobs[1][1]}: content file missing" in report.stdout
    assert blobs[2][1] not in report.stdout
