"""Progress of ``registry gc``, ``fsck`` and ``audit export`` on a terminal (stderr is a pty), and nothing of it
when stderr is not a terminal or with ``--no-progress``: stdout is the same either way."""

from __future__ import annotations

import os
import pty
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gc.test_gc_server import push_image
from tests.serverproc import BIN, RegistryProcess


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data directory with two images, one of them deleted (garbage for gc), the server stopped."""
    root = tmp_path_factory.mktemp("progress") / "data"
    with RegistryProcess(root) as proc, httpx.Client(base_url=proc.url, timeout=30) as client:
        push_image(client, "apps/kept", "v1", [b"kept layer " * 200])
        digest, _ = push_image(client, "apps/gone", "v1", [b"gone layer " * 300])
        assert client.delete(f"/v2/apps/gone/manifests/{digest}").status_code == 202
    yield root


def run_on_tty(*args: str) -> tuple[int, str, str]:
    """Run ``registry ARGS`` with stderr on a pseudo-terminal: (exit status, stdout, what the terminal got)."""
    master, slave = pty.openpty()
    with open(os.devnull) as devnull:
        proc = subprocess.Popen(
            [str(BIN / "registry"), *args], stdin=devnull, stdout=subprocess.PIPE, stderr=slave, text=True
        )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.stdout is not None
    stdout = proc.stdout.read()
    proc.stdout.close()
    return proc.wait(timeout=120), stdout, b"".join(chunks).decode(errors="replace")


def run_piped(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "registry"), *args], capture_output=True, text=True, timeout=120)


def test_fsck_progress_on_a_terminal_only(data: Path) -> None:
    status, stdout, terminal = run_on_tty("fsck", "--data", str(data))
    piped = run_piped("fsck", "--data", str(data))
    assert status == 0 == piped.returncode
    assert "fsck: re-hash blobs 4/4 (100%)" in terminal  # a config and a layer per image
    assert "fsck: check references 2/2 (100%)" in terminal  # those of the kept image
    assert "fsck: walk content files 4" in terminal
    assert "\r" in terminal
    assert piped.stderr == ""  # not a terminal: no progress at all
    assert stdout == piped.stdout and "clean" in stdout


def test_audit_export_progress_counts_records(data: Path) -> None:
    piped = run_piped("audit", "export", "--data", str(data))
    total = len(piped.stdout.splitlines())
    assert piped.returncode == 0 and total > 0 and piped.stderr == ""
    status, stdout, terminal = run_on_tty("audit", "export", "--data", str(data))
    assert status == 0
    assert f"audit export: records {total}/{total} (100%)" in terminal
    assert stdout == piped.stdout


def test_no_progress_flag_keeps_the_terminal_quiet(data: Path) -> None:
    status, stdout, terminal = run_on_tty("audit", "export", "--data", str(data), "--no-progress")
    assert status == 0 and stdout and terminal == ""


def test_gc_progress_then_the_same_report(data: Path) -> None:
    status, stdout, terminal = run_on_tty("gc", "--data", str(data), "--dry-run", "--grace-period", "0")
    piped = run_piped("gc", "--data", str(data), "--dry-run", "--grace-period", "0")
    assert status == 0 == piped.returncode
    assert "gc: flush usage" in terminal and "gc: sweep (dry run)" in terminal
    assert piped.stderr == ""
    assert stdout == piped.stdout and "would remove blob" in stdout
    status, stdout, terminal = run_on_tty("gc", "--data", str(data), "--grace-period", "0")
    assert status == 0 and "removed blob" in stdout
    assert "gc: delete files 2/2 (100%)" in terminal  # the deleted image's config and layer
