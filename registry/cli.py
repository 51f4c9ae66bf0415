"""The ``registry`` command: serve, config check, fsck."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import trio

from config import ConfigError, Settings, load_settings
from registry import admin_cli, backup, gc_cli
from registry.extensions import supplychain_cli
from registry.extensions.scan import cli as scan_cli
from registry.progress import add_progress_flag

log = logging.getLogger("registry")


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, dict[str, Any]] = {}
    if getattr(args, "listen", None):
        overrides.setdefault("server", {})["listen"] = args.listen
    if getattr(args, "public_url", None):
        overrides.setdefault("server", {})["public_url"] = args.public_url
    if getattr(args, "tls_cert", None):
        overrides.setdefault("server", {})["tls_cert"] = args.tls_cert
    if getattr(args, "tls_key", None):
        overrides.setdefault("server", {})["tls_key"] = args.tls_key
    if getattr(args, "data", None):
        overrides.setdefault("storage", {})["root"] = args.data
    if getattr(args, "workers", None) is not None:
        overrides.setdefault("server", {})["workers"] = args.workers
    if getattr(args, "auth", None):
        overrides.setdefault("auth", {})["mode"] = args.auth
    return load_settings(args.config, overrides=overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from registry.logs import setup_logging

    setup_logging(settings.log.level, settings.log.format)
    if settings.server.workers > 1:
        from registry.workers import exec_supervisor

        return exec_supervisor(settings)
    from registry.listen import ListenError, bind, hypercorn_config
    from registry.server import serve

    try:
        sockets = bind(hypercorn_config(settings), settings.server.listen)
    except ListenError as exc:
        log.critical("%s", exc)
        return 1
    trio.run(serve, settings, sockets)
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    load_settings(args.file)
    print(f"{args.file}: OK")
    return 0


def cmd_fsck(args: argparse.Namespace) -> int:
    from registry.app import DB_NAME
    from registry.fsck import format_report, fsck
    from registry.progress import TerminalProgress
    from registry.storage.fs_blobs import FilesystemBlobStore
    from registry.storage.sqlite_meta import open_sqlite_metadata

    settings = _settings(args)
    root = Path(settings.storage.root)
    if not (root / DB_NAME).exists():
        print(f"no registry data in {root}", file=sys.stderr)
        return 2

    async def run() -> int:
        meta = await open_sqlite_metadata(root / DB_NAME)
        try:
            report = await fsck(FilesystemBlobStore(root), meta, TerminalProgress("fsck", args.progress))
        finally:
            await meta.aclose()
        print(format_report(report))
        return 0 if report.clean else 1

    return trio.run(run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="registry", description="OCI Distribution registry")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the registry")
    serve.add_argument("--config", help="TOML configuration file")
    serve.add_argument("--listen", help="HOST:PORT to listen on (default 127.0.0.1:5000)")
    serve.add_argument("--data", help="data directory (blobs + metadata)")
    serve.add_argument(
        "--auth", choices=["token", "none"], help="token (default): IAM and token auth; none: open registry (opt-in)"
    )
    serve.add_argument("--public-url", help="externally visible scheme://host[:port]")
    serve.add_argument("--tls-cert", help="PEM certificate chain: serve HTTPS")
    serve.add_argument("--tls-key", help="PEM private key for --tls-cert")
    serve.add_argument(
        "--workers", type=int, help="worker processes sharing the listening socket (default 1; e.g. one per core)"
    )
    serve.set_defaults(func=cmd_serve)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(func=cmd_config_check)

    fsck = sub.add_parser("fsck", help="re-hash blobs and check references")
    fsck.add_argument("--data", help="data directory")
    fsck.add_argument("--config", help="TOML configuration file")
    add_progress_flag(fsck)
    fsck.set_defaults(func=cmd_fsck)
    admin_cli.add_parser(sub)
    gc_cli.add_parser(sub)
    backup.add_parser(sub)
    scan_cli.add_parser(sub)
    supplychain_cli.add_parser(sub)
    return parser


def cmd_admin(args: argparse.Namespace) -> int:
    settings = _settings(args)
    return admin_cli.run_admin(args, settings)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func = cmd_admin if args.command == "admin" else args.func if args.command not in scan_cli.COMMANDS else None
    try:
        result: int = scan_cli.run(args, _settings(args)) if func is None else func(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
