"""``registry backup`` and ``registry restore``: the SQLite metadata and the blobs of a data directory.

Consistent while the server runs: the database is copied first with SQLite's online backup API (a snapshot of
one committed state), then the blob files. Blobs are immutable and are renamed into ``blobs/`` *before* the
metadata that references them commits, so every blob the snapshot references is already on disk when the copy
starts. (A garbage collection that deletes such a blob between the two steps would make fsck of the backup report
it missing; run backups outside GC windows.) ``inventory.json`` lists every copied blob with its size and sha256,
re-hashed while copying; restore re-checks every blob against it before it writes anything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

from registry.progress import TerminalProgress

DB_NAME = "registry.db"
INVENTORY = "inventory.json"
PIECE = 1024 * 1024


class BackupError(Exception):
    pass


def _copy_hashing(src: Path, dst: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while piece := fin.read(PIECE):
            digest.update(piece)
            fout.write(piece)
            size += len(piece)
    return size, digest.hexdigest()


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fin:
        while piece := fin.read(PIECE):
            digest.update(piece)
            size += len(piece)
    return size, digest.hexdigest()


def backup(data: Path, dest: Path) -> dict[str, Any]:
    """Back up ``data`` into the new directory ``dest``; return the inventory."""
    if not (data / DB_NAME).exists():
        raise BackupError(f"no registry data in {data}")
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{data / DB_NAME}?mode=ro", uri=True)
    target = sqlite3.connect(dest / DB_NAME)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    files = sorted(p for p in (data / "blobs").rglob("*") if p.is_file())
    progress = TerminalProgress("backup")
    progress.phase("blobs", len(files))
    blobs: dict[str, dict[str, Any]] = {}
    for path in files:
        relative = path.relative_to(data)
        (dest / relative).parent.mkdir(parents=True, exist_ok=True)
        size, sha = _copy_hashing(path, dest / relative)
        if path.parent.parent.name == "sha256" and sha != path.name:
            raise BackupError(f"{relative} does not hash to its name: run registry fsck")
        blobs[str(relative)] = {"size": size, "sha256": sha}
        progress.advance()
    progress.done()
    inventory = {"version": 1, "database": DB_NAME, "blobs": blobs}
    (dest / INVENTORY).write_text(json.dumps(inventory, indent=1))
    return inventory


def restore(source: Path, data: Path) -> int:
    """Restore the backup at ``source`` into ``data`` (which must hold no registry); return the blob count."""
    inventory = json.loads((source / INVENTORY).read_text())
    if (data / DB_NAME).exists():
        raise BackupError(f"{data} already holds a registry database; restore into a new directory")
    progress = TerminalProgress("restore")
    progress.phase("verify", len(inventory["blobs"]))
    for relative, entry in inventory["blobs"].items():
        if _hash_file(source / relative) != (entry["size"], entry["sha256"]):
            raise BackupError(f"backup damaged: {relative} does not match the inventory")
        progress.advance()
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    progress.phase("blobs", len(inventory["blobs"]))
    for relative in inventory["blobs"]:
        (data / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, data / relative)
        progress.advance()
    progress.done()
    (data / "uploads").mkdir(exist_ok=True)
    shutil.copyfile(source / DB_NAME, data / DB_NAME)  # last: a half-restored directory has no database
    return len(inventory["blobs"])


def cmd_backup(args: argparse.Namespace) -> int:
    try:
        inventory = backup(Path(args.data), Path(args.to))
    except (BackupError, OSError, sqlite3.Error) as exc:
        print(f"registry backup: {exc}", file=sys.stderr)
        return 1
    print(f"backed up {DB_NAME} and {len(inventory['blobs'])} blob(s) to {args.to}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    try:
        count = restore(Path(getattr(args, "from")), Path(args.data))
    except (BackupError, OSError, KeyError, ValueError) as exc:
        print(f"registry restore: {exc}", file=sys.stderr)
        return 1
    print(f"restored {DB_NAME} and {count} blob(s) into {args.data}; run `registry fsck --data {args.data}`")
    return 0


def add_parser(sub: Any) -> None:
    """Add ``backup`` and ``restore`` to the ``registry`` command's subparsers."""
    parser = sub.add_parser("backup", help="copy metadata (SQLite online backup) and blobs; safe while serving")
    parser.add_argument("--data", required=True, help="data directory to back up")
    parser.add_argument("--to", required=True, help="new, empty backup directory")
    parser.set_defaults(func=cmd_backup)
    parser = sub.add_parser("restore", help="restore a backup into a new data directory")
    parser.add_argument("--from", required=True, help="backup directory made by `registry backup`")
    parser.add_argument("--data", required=True, help="new data directory")
    parser.set_defaults(func=cmd_restore)
