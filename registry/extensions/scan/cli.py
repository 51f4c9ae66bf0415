"""``registry vulndb import FILE…``, ``registry vulndb status`` and ``registry scan IMAGE | --sbom FILE``.

Work on a data directory beside a running server (SQLite ``BEGIN IMMEDIATE`` with a busy timeout). Output is
JSON on stdout; errors are JSON on stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import trio

from config import Settings
from registry.extensions.scan.images import ImageScanner, NoSbom
from registry.extensions.scan.policy import ScanPolicies
from registry.extensions.scan.report import scan_sbom
from registry.extensions.vulndb.importers import ImportFormatError, read_file
from registry.extensions.vulndb.store import SqliteVulnStore
from registry.oci.errors import RegistryError
from registry.storage.fs_blobs import FilesystemBlobStore
from registry.storage.service import RegistryService
from registry.storage.sqlite_db import SqliteDatabase, open_database
from registry.storage.sqlite_meta import SqliteMetadataStore

DB_NAME = "registry.db"
COMMANDS = ("vulndb", "scan", "scan-policy")


def add_parser(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", help="data directory")
    common.add_argument("--config", help="TOML configuration file")
    vulndb = sub.add_parser("vulndb", help="offline vulnerability database")
    verbs = vulndb.add_subparsers(dest="verb", required=True)
    imp = verbs.add_parser(
        "import", parents=[common], help="import OSV JSON/zip, Alpine secdb or Debian tracker JSON files"
    )
    imp.add_argument("files", nargs="+", type=Path)
    imp.add_argument("--no-rescan", action="store_true", help="do not rescan previously scanned images")
    verbs.add_parser("status", parents=[common], help="sources, record counts and age")

    scan = sub.add_parser("scan", parents=[common], help="scan an image's CycloneDX SBOM referrer (or an SBOM file)")
    scan.add_argument("image", nargs="?", help="REPOSITORY:TAG or REPOSITORY@DIGEST stored in this registry")
    scan.add_argument("--sbom", type=Path, help="scan this CycloneDX JSON file instead of a stored image")
    scan.add_argument("--no-publish", action="store_true", help="do not attach the report as a referrer")
    scan.add_argument("--rescan-stale", action="store_true", help="rescan images scanned with an older database")

    policy = sub.add_parser("scan-policy", help="per-namespace pull policy based on scan results")
    pverbs = policy.add_subparsers(dest="verb", required=True)
    pset = pverbs.add_parser("set", parents=[common], help="refuse pulls at or above a severity")
    pset.add_argument("namespace")
    pset.add_argument("--severity", required=True, help="CRITICAL, HIGH, MEDIUM or LOW")
    pset.add_argument("--allow", action="append", default=[], help="vulnerability id or alias never blocking")
    pclear = pverbs.add_parser("clear", parents=[common], help="turn the policy of a namespace off")
    pclear.add_argument("namespace")
    pverbs.add_parser("list", parents=[common], help="show all policies")


def split_image(image: str) -> tuple[str, str]:
    """``repo:tag`` / ``repo@digest`` / ``repo`` (→ ``latest``)."""
    if "@" in image:
        repo, _, ref = image.partition("@")
        return repo, ref
    head, _, last = image.rpartition("/")
    if ":" in last:
        name, _, tag = last.partition(":")
        return (f"{head}/{name}" if head else name), tag
    return image, "latest"


async def _vulndb(db: SqliteDatabase, root: Path, args: argparse.Namespace, settings: Settings) -> Any:
    store = SqliteVulnStore(db)
    await store.setup()
    if args.verb == "import":
        batches = [(read_file(path), path.name) for path in args.files]
        generation = await store.replace(batches)
        rescanned = 0
        if not args.no_rescan:  # the database changed: every stored result is stale now
            rescanned = await _scanner(db, root, settings).rescan_stale()
        return {
            "generation": generation,
            "imported": [{"file": o, "source": b.source, "records": len(b.records)} for b, o in batches],
            "rescanned": rescanned,
        }
    now = time.time()
    return {
        "generation": await store.generation(),
        "sources": [
            {
                "source": s.source,
                "records": s.records,
                "imported_at": s.imported_at,
                "age_seconds": int(now - s.imported_at),
                "files": s.origin,
            }
            for s in await store.status()
        ],
    }


def _scanner(db: SqliteDatabase, root: Path, settings: Settings) -> ImageScanner:
    service = RegistryService(FilesystemBlobStore(root), SqliteMetadataStore(db), settings.limits.manifest_max_bytes)
    return ImageScanner(service, db)


async def _scan(db: SqliteDatabase, root: Path, args: argparse.Namespace, settings: Settings) -> Any:
    scanner = _scanner(db, root, settings)
    await scanner.setup()
    if args.sbom is not None:
        return await scan_sbom(json.loads(args.sbom.read_bytes()), scanner.vulns, {"file": str(args.sbom)})
    if args.rescan_stale:
        return {"rescanned": await scanner.rescan_stale()}
    if not args.image:
        raise ValueError("name an IMAGE, --sbom FILE or --rescan-stale")
    repo, ref = split_image(args.image)
    return await scanner.scan(repo, ref, publish=not args.no_publish)


async def _policy(db: SqliteDatabase, args: argparse.Namespace) -> Any:
    policies = ScanPolicies(db)
    if args.verb == "set":
        return asdict(await policies.set(args.namespace, args.severity, args.allow))
    if args.verb == "clear":
        return {"cleared": args.namespace, "existed": await policies.clear(args.namespace)}
    return [asdict(p) for p in await policies.all()]


def run(args: argparse.Namespace, settings: Settings) -> int:
    root = Path(settings.storage.root)

    async def main() -> Any:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = await open_database(root / DB_NAME)
        try:
            if args.command == "vulndb":
                return await _vulndb(db, root, args, settings)
            if args.command == "scan-policy":
                return await _policy(db, args)
            return await _scan(db, root, args, settings)
        finally:
            await db.aclose()

    try:
        result = trio.run(main)
    except (ImportFormatError, NoSbom, ValueError, OSError) as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}), file=sys.stderr)
        return 1
    except RegistryError as exc:
        print(json.dumps({"error": exc.code.code, "message": str(exc)}), file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0
