"""Fault fixtures: a primary whose data directory is a small tmpfs of its own (full disk, read-only remount),
a process holding SQLite's exclusive lock, and a counter of injected faults for the report.

Mounting needs root (CI runs as root in its container); without it the tmpfs tests are skipped, never faked.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serverproc import BIN, RegistryProcess

TMPFS_SIZE = "8m"
INJECTED: Counter[str] = Counter()  # fault → times injected (and survived: a failing test does not count)


def survived(fault: str) -> None:
    """Count one injected fault whose checks all passed."""
    INJECTED[fault] += 1


class SmallDisk:
    """A tmpfs of ``TMPFS_SIZE`` mounted at ``path``; ``fill`` leaves about ``free`` bytes, ``readonly`` remounts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(self.path)],
            capture_output=True,
            check=False,
        )
        if out.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {out.stderr.decode().strip()}")

    def unmount(self) -> None:
        subprocess.run(["umount", "-R", "-l", str(self.path)], check=False)

    def fill(self, free: int) -> None:
        """Write a filler file until about ``free`` bytes remain."""
        with open(self.filler, "ab") as out:
            while True:
                avail = self.available()
                if avail <= free:
                    break
                try:
                    out.write(b"\0" * min(avail - free, 1 << 20))
                    out.flush()
                except OSError:
                    break

    def release(self) -> None:
        self.filler.unlink(missing_ok=True)

    def available(self) -> int:
        import os

        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def readonly(self, on: bool, *subdirs: str) -> None:
        """Make ``subdirs`` read-only (EROFS) under the running server with read-only bind mounts, or undo it.

        (A remount of the whole tmpfs is refused while SQLite holds its files open for writing.)"""
        for sub in subdirs:
            target = str(self.path / sub)
            if on:
                subprocess.run(["mount", "--bind", target, target], check=True)
                subprocess.run(["mount", "-o", "remount,bind,ro", target], check=True)
            else:
                subprocess.run(["umount", target], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    disk = SmallDisk(tmp_path / "disk")
    disk.mount()
    try:
        yield disk
    finally:
        disk.unmount()


@pytest.fixture
def disk_registry(small_disk: SmallDisk) -> Iterator[RegistryProcess]:
    """An open registry whose data directory is ``small_disk`` (its log is beside it, off the tmpfs)."""
    with RegistryProcess(small_disk.path) as proc:
        yield proc


def fsck(proc: RegistryProcess) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "registry"), "fsck", "--data", str(proc.data)],
        capture_output=True,
        text=True,
        timeout=120,
        env=proc.env_for_cli(),
        check=False,
    )


def oci_error(response: httpx.Response) -> tuple[int, str]:
    """(status, first OCI error code); fails the test if the body is not an OCI error envelope."""
    doc = response.json()
    assert isinstance(doc.get("errors"), list) and doc["errors"], response.text
    first = doc["errors"][0]
    assert isinstance(first.get("code"), str) and isinstance(first.get("message"), str), response.text
    return response.status_code, first["code"]


class DatabaseLock:
    """Another process holding ``BEGIN EXCLUSIVE`` on a SQLite file until ``release``."""

    SCRIPT = (
        "import sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
        "db.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
        "db.execute('ROLLBACK')\n"
    )

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self.SCRIPT, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == b"locked"

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(10)


def unique(prefix: str) -> str:
    return f"{prefix}/r{uuid.uuid4().hex[:10]}"


def readable(path: Path) -> bool:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT 1").fetchone() == (1,)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if INJECTED:
        terminalreporter.write_line(f"faults injected and survived: {sum(INJECTED.values())} {dict(INJECTED)}")


# The edge fixtures (a primary with its access log, the fault-injecting proxy, edge processes), shared.
from tests.edge.conftest import fault_proxy, make_edge, primary  # noqa: E402, F401
