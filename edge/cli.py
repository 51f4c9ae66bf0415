"""The ``edge`` command: ``serve`` a pull-through edge node, print a ``containerd-config`` for it, ``prefetch``."""

from __future__ import annotations

import argparse
import logging
import sys

import trio

from edge.containerd import hosts_toml
from edge.settings import AUTH_MODES, LOG_FORMATS, EdgeSettings, SettingsError, load_settings, read_secret


def _settings(args: argparse.Namespace) -> EdgeSettings:
    overrides = {
        "listen": args.listen,
        "upstream": args.upstream,
        "cache_dir": args.cache_dir,
        "cache_size_mib": args.cache_size_mib,
        "upstream_names": tuple(args.upstream_name) if args.upstream_name else None,
        "tag_ttl": args.tag_ttl,
        "max_stale": args.max_stale,
        "access_log": True if args.access_log else None,
        "log_level": args.log_level,
        "log_format": args.log_format,
        "auth_mode": args.auth_mode,
        "token_realm": args.token_realm,
        "identity_username": args.identity_username,
        "identity_password_file": args.identity_password_file,
        "client_header_name": args.client_header_name,
        "client_header_value_file": args.client_header_value_file,
        "subscribe_namespaces": tuple(args.subscribe_namespace) if args.subscribe_namespace else None,
        "pull_report_interval": args.pull_report_interval,
        "upstreams": [_extra_upstream(value) for value in args.extra_upstream] if args.extra_upstream else None,
    }
    return load_settings(args.config, overrides)


def _extra_upstream(value: str) -> dict[str, object]:
    """``URL[=NAME,NAME...]`` → an ``[[upstreams]]`` table."""
    url, _, names = value.partition("=")
    return {"url": url, "names": [name for name in names.split(",") if name]}


def cmd_serve(args: argparse.Namespace) -> int:
    from edge.logs import setup_logging
    from edge.server import ListenError, bind, hypercorn_config, serve

    try:
        settings = _settings(args)
    except SettingsError as exc:
        print(f"edge: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format)
    try:
        sockets = bind(hypercorn_config(settings), settings.listen)
    except ListenError as exc:
        logging.getLogger("edge").critical("%s", exc)
        return 1
    trio.run(serve, settings, sockets)
    return 0


def cmd_containerd_config(args: argparse.Namespace) -> int:
    upstream = args.upstream or f"https://{args.registry_host}"
    header: tuple[str, str] | None = None
    if bool(args.client_header_name) != bool(args.client_header_value_file):
        print("edge: --client-header-name and --client-header-value-file go together", file=sys.stderr)
        return 2
    if args.client_header_name:
        header = (args.client_header_name, read_secret(args.client_header_value_file))
    print(hosts_toml(upstream, args.edge_url.rstrip("/"), args.dial_timeout, header), end="")
    return 0


def cmd_prefetch(args: argparse.Namespace) -> int:
    from edge.prefetchcli import prefetch_images

    headers: dict[str, str] = {}
    if bool(args.username) != bool(args.password_file):
        print("edge: --username and --password-file go together", file=sys.stderr)
        return 2
    if args.username:
        import base64

        pair = f"{args.username}:{read_secret(args.password_file)}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    if bool(args.client_header_name) != bool(args.client_header_value_file):
        print("edge: --client-header-name and --client-header-value-file go together", file=sys.stderr)
        return 2
    if args.client_header_name:
        headers[args.client_header_name] = read_secret(args.client_header_value_file)
    return prefetch_images(args.edge_url, args.image, headers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description="Edge node: a pull-through cache of an OCI registry")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the edge node")
    serve.add_argument("--config", help="TOML file with the settings (flat keys, as the long options)")
    serve.add_argument("--listen", help="HOST:PORT to listen on (default 127.0.0.1:5001; port 0: any free port)")
    serve.add_argument("--upstream", help="the registry to cache, scheme://host[:port]")
    serve.add_argument("--cache-dir", help="directory of the blob cache and index")
    serve.add_argument("--cache-size-mib", type=int, help="cache size limit in MiB (default 10240)")
    serve.add_argument(
        "--upstream-name",
        action="append",
        help="a registry host name (as in image references) that means the upstream in containerd's ?ns=; repeatable",
    )
    serve.add_argument(
        "--extra-upstream",
        action="append",
        metavar="URL[=NAME,...]",
        help="a further upstream (anonymous), added to the config file's [[upstreams]]; repeatable",
    )
    serve.add_argument("--tag-ttl", type=float, help="seconds a tag is served without revalidation (default 60)")
    serve.add_argument(
        "--max-stale",
        type=float,
        help="seconds past the TTL a tag is served while the upstream is down (default 1 day)",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument("--log-level", help="debug, info (default), warning, error")
    serve.add_argument("--log-format", choices=LOG_FORMATS, help="text (default) or json: one JSON object per line")
    serve.add_argument("--auth-mode", choices=AUTH_MODES, help="client authentication (default none)")
    serve.add_argument("--token-realm", help="the token URL clients are sent to (default: the upstream's realm)")
    serve.add_argument("--identity-username", help="the edge's own upstream account (identity mode)")
    serve.add_argument("--identity-password-file", help="file holding that account's password")
    serve.add_argument("--client-header-name", help="a header every client must send")
    serve.add_argument("--client-header-value-file", help="file holding that header's value")
    serve.add_argument(
        "--subscribe-namespace",
        action="append",
        help="prefetch what is pushed to this namespace on the primary (its event feed); repeatable",
    )
    serve.add_argument(
        "--pull-report-interval",
        type=float,
        help="seconds between pull-statistics reports to the primary (default 30; 0: off; needs the identity)",
    )
    serve.set_defaults(func=cmd_serve)

    ctd = sub.add_parser("containerd-config", help="print hosts.toml for /etc/containerd/certs.d/<host>/hosts.toml")
    ctd.add_argument("--registry-host", required=True, help="the registry host as in image references")
    ctd.add_argument("--edge-url", required=True, help="the edge node's URL, scheme://host:port")
    ctd.add_argument("--upstream", help="the registry's URL (default https://<registry-host>)")
    ctd.add_argument("--dial-timeout", default="2s", help="mirror connect timeout (containerd >= 2.1; default 2s)")
    ctd.add_argument("--client-header-name", help="a header containerd sends to the edge (the edge requires it)")
    ctd.add_argument("--client-header-value-file", help="file holding that header's value")
    ctd.set_defaults(func=cmd_containerd_config)

    pre = sub.add_parser("prefetch", help="warm a running edge's cache with images (all platforms of an index)")
    pre.add_argument("--edge-url", required=True, help="the edge node's URL, scheme://host:port")
    pre.add_argument("image", nargs="+", help="[HOST/]REPOSITORY[:TAG|@DIGEST]")
    pre.add_argument("--username", help="pull credential sent to the edge (passthrough mode)")
    pre.add_argument("--password-file", help="file holding that credential's password")
    pre.add_argument("--client-header-name", help="the static header the edge requires, if any")
    pre.add_argument("--client-header-value-file", help="file holding that header's value")
    pre.set_defaults(func=cmd_prefetch)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
