"""``registry sbom …`` and ``registry attest …``: on-demand SBOMs, the SBOM index, attestation keys and
verification, on a data directory (beside a running server, like ``registry admin``). Output is JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from config import Settings, load_settings
from registry.extensions.attest.verify import verify_image
from registry.extensions.supplychain import attestation_keys, build_generator
from registry.oci import errors as e
from registry.oci.names import validate_name
from registry.storage.fs_blobs import FilesystemBlobStore
from registry.storage.service import RegistryService
from registry.storage.sqlite_meta import open_sqlite_metadata

DB_NAME = "registry.db"
Run = Callable[[RegistryService, FilesystemBlobStore, Path, Settings, argparse.Namespace], Awaitable[Any]]


def split_image(image: str) -> tuple[str, str]:
    """``repo:tag`` / ``repo@sha256:…`` → (repo, reference); a bare repo means ``latest``."""
    if "@" in image:
        repo, ref = image.split("@", 1)
    else:
        head, _, tail = image.rpartition(":")
        repo, ref = (head, tail) if head and "/" not in tail else (image, "latest")
    validate_name(repo)
    return repo, ref


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {"storage": {"root": args.data}} if args.data else None
    return load_settings(args.config, overrides=overrides)


def _with_service(args: argparse.Namespace, run: Run) -> int:
    settings = _settings(args)
    root = Path(settings.storage.root)
    if not (root / DB_NAME).exists():
        print(f"no registry data in {root}", file=sys.stderr)
        return 2

    async def main() -> Any:
        meta = await open_sqlite_metadata(root / DB_NAME)
        try:
            blobs = FilesystemBlobStore(root)
            service = RegistryService(blobs, meta, settings.limits.manifest_max_bytes)
            return await run(service, blobs, root, settings, args)
        finally:
            await meta.aclose()

    try:
        result = trio.run(main)
    except e.RegistryError as err:
        print(f"{err.code.code}: {err.message}", file=sys.stderr)
        return 1
    if isinstance(result, int):
        return result
    print(json.dumps(result, indent=2))
    return 0


async def _generate(
    service: RegistryService, blobs: FilesystemBlobStore, root: Path, settings: Settings, args: argparse.Namespace
) -> Any:
    repo, ref = split_image(args.image)
    generator = build_generator(service, blobs.blob_path, root, settings.supply_chain)
    return [g.__dict__ for g in await generator.generate(repo, ref, force=args.force)]


async def _list(
    service: RegistryService, blobs: FilesystemBlobStore, root: Path, settings: Settings, args: argparse.Namespace
) -> Any:
    generator = build_generator(service, blobs.blob_path, root, settings.supply_chain)
    subject = None
    repo = args.image
    if "@" in args.image or ":" in args.image.rsplit("/", 1)[-1]:
        repo, ref = split_image(args.image)
        subject = str((await service.get_manifest(repo, ref)).digest)
    return [row.as_dict() for row in await generator.index.list(repo, subject)]


async def _verify(
    service: RegistryService, blobs: FilesystemBlobStore, root: Path, settings: Settings, args: argparse.Namespace
) -> Any:
    repo, ref = split_image(args.image)
    report = await verify_image(service, repo, ref, attestation_keys(root, settings.supply_chain))
    print(json.dumps(report.as_dict(), indent=2))
    return 0 if report.ok else 1


def cmd_keys(args: argparse.Namespace) -> int:
    settings = _settings(args)
    keys = attestation_keys(Path(settings.storage.root), settings.supply_chain)
    if args.rotate:
        keys.rotate()
    elif not keys.history():
        keys.signer()  # create the first key
    if args.pem:
        current = [k for k in keys.history() if k.get("retired") is None]
        print(current[-1]["public_key"], end="")
    else:
        print(json.dumps({"keys": keys.history()}, indent=2))
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="data directory")
    parser.add_argument("--config", help="TOML configuration file")


def add_parser(sub: Any) -> None:
    sbom = sub.add_parser("sbom", help="SBOMs of stored images")
    sbom_sub = sbom.add_subparsers(dest="sbom_command", required=True)
    gen = sbom_sub.add_parser("generate", help="generate (again) the SBOMs of IMAGE (repo:tag or repo@digest)")
    gen.add_argument("image")
    gen.add_argument("--force", action="store_true", help="also when registry SBOMs already exist")
    _common(gen)
    gen.set_defaults(func=lambda a: _with_service(a, _generate))
    lst = sbom_sub.add_parser("list", help="indexed SBOMs of REPO or of one IMAGE")
    lst.add_argument("image")
    _common(lst)
    lst.set_defaults(func=lambda a: _with_service(a, _list))

    attest = sub.add_parser("attest", help="signed attestations")
    attest_sub = attest.add_subparsers(dest="attest_command", required=True)
    verify = attest_sub.add_parser("verify", help="verify the attestations of IMAGE (signatures and subject)")
    verify.add_argument("image")
    _common(verify)
    verify.set_defaults(func=lambda a: _with_service(a, _verify))
    keys = attest_sub.add_parser("keys", help="show (or --rotate) the attestation public keys and their history")
    keys.add_argument("--rotate", action="store_true")
    keys.add_argument("--pem", action="store_true", help="print only the current public key (PEM)")
    _common(keys)
    keys.set_defaults(func=cmd_keys)
