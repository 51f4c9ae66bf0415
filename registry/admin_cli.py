"""``registry admin``: manage namespaces, principals, credentials, roles and bindings on a data directory.

Works beside a running server (SQLite ``BEGIN IMMEDIATE`` with a busy timeout); the server sees changes at
once because every IAM write bumps a generation its caches compare. Output is JSON.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio

from config import Settings
from registry.iam.model import ALL_NAMESPACES, Binding
from registry.iam.setup import IamStack, build_iam
from registry.iam.store import IamError
from registry.storage.sqlite_db import open_database

DB_NAME = "registry.db"
Command = Callable[[IamStack, argparse.Namespace, Settings], Awaitable[Any]]


def _subject(args: argparse.Namespace) -> tuple[str, str]:
    for kind, value in (("user", args.user), ("service-account", args.service_account), ("team", args.team)):
        if value:
            return kind, value
    raise IamError("invalid", "name a subject with --user, --service-account or --team")


def _principal(args: argparse.Namespace) -> tuple[str, str]:
    kind, name = _subject(args)
    if kind == "team":
        raise IamError("invalid", "credentials belong to a --user or --service-account")
    return kind, name


def _jsonable(value: Any) -> Any:
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {k: (sorted(v) if isinstance(v, frozenset) else v) for k, v in asdict(value).items()}
    return value


async def _namespace(stack: IamStack, args: argparse.Namespace, settings: Settings) -> Any:
    iam = stack.iam
    if args.verb == "create":
        return await iam.create_namespace(args.name, args.description or "", args.public, actor="cli")
    if args.verb == "update":
        public = True if args.public else (False if args.private else None)
        return await iam.update_namespace(args.name, args.description, public, actor="cli")
    if args.verb == "delete":
        await iam.delete_namespace(args.name, actor="cli")
        return {"deleted": args.name}
    return await stack.store.list_namespaces()


def _principal_group(kind: str) -> Command:
    async def run(stack: IamStack, args: argparse.Namespace, settings: Settings) -> Any:
        if args.verb == "create":
            principal = await stack.iam.create_principal(kind, args.name, args.description or "", actor="cli")
            issued = await stack.iam.create_credential(kind, args.name, "created with the principal", None, "cli")
            return {**issued.as_json(), **_jsonable(principal)}
        if args.verb == "delete":
            await stack.iam.delete_principal(kind, args.name, actor="cli")
            return {"deleted": f"{kind}:{args.name}"}
        return await stack.store.list_principals(kind)

    return run


async def _credential(stack: IamStack, args: argparse.Namespace, settings: Settings) -> Any:
    if args.verb == "revoke":
        return await stack.iam.revoke_credential(args.username, actor="cli")
    kind, name = _principal(args)
    if args.verb == "create":
        issued = await stack.iam.create_credential(kind, name, args.description or "", args.expires_in, "cli")
        return issued.as_json()
    return await stack.store.list_credentials(kind, name)


async def _team(stack: IamStack, args: argparse.Namespace, settings: Settings) -> Any:
    if args.verb == "create":
        await stack.iam.create_team(args.name, args.description or "", actor="cli")
        return {"created": args.name}
    if args.verb == "delete":
        await stack.iam.delete_team(args.name, actor="cli")
        return {"deleted": args.name}
    if args.verb in ("add-member", "remove-member"):
        kind, name = _principal(args)
        await stack.iam.set_membership(args.name, kind, name, args.verb == "add-member", actor="cli")
        return {"team": args.name, "member": f"{kind}:{name}", "member_now": args.verb == "add-member"}
    return [{"name": n, "description": d, "members": m} for n, d, m in await stack.store.list_teams()]


async def _role(stack: IamStack, args: argparse.Namespace, settings: Settings) -> Any:
    if args.verb == "create":
        return await stack.iam.create_role(args.name, args.permissions, args.description or "", actor="cli")
    if args.verb == "delete":
        await stack.iam.delete_role(args.name, actor="cli")
        return {"deleted": args.name}
    return await stack.store.list_roles()


def _binding_command(present: bool) -> Command:
    async def run(stack: IamStack, args: argparse.Namespace, settings: Settings) -> Any:
        kind, name = _subject(args)
        namespace = ALL_NAMESPACES if args.all_namespaces else args.namespace
        if not namespace:
            raise IamError("invalid", "name a namespace with --namespace NS (or --all-namespaces)")
        binding = Binding(args.role, namespace, kind, name)
        await stack.iam.set_binding(binding, present, actor="cli")
        return {"granted" if present else "revoked": _jsonable(binding)}

    return run


async def _bindings(stack: IamStack, args: argparse.Namespace, settings: Settings) -> Any:
    return await stack.store.list_bindings()


async def _pull_secret(stack: IamStack, args: argparse.Namespace, settings: Settings) -> Any:
    host = args.registry_host or urlsplit(settings.server.public_url).netloc or settings.server.listen
    issued = await stack.iam.create_credential(
        "service-account", args.service_account, f"pull secret for {host}", args.expires_in, "cli"
    )
    username, password = issued.credential.username, issued.password
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    config = {"auths": {host: {"username": username, "password": password, "auth": auth}}}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": args.name or f"registry-{args.service_account}", "namespace": args.k8s_namespace},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
    }


async def _k8s_identity(stack: IamStack, args: argparse.Namespace, settings: Settings) -> Any:
    await stack.store.set_k8s_identity(
        args.issuer, args.subject, None if args.verb == "unbind" else args.service_account
    )
    return {"issuer": args.issuer, "subject": args.subject, "service_account": args.service_account}


async def _rotate_key(stack: IamStack, args: argparse.Namespace, settings: Settings) -> Any:
    return {"active_kid": await stack.tokens.rotate()}


async def _audit(stack: IamStack, args: argparse.Namespace, settings: Settings) -> Any:
    return await stack.store.audit_records(args.limit)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = sub.add_parser("admin", help="manage namespaces, principals, credentials, roles and bindings")
    admin.add_argument("--data", help="data directory")
    admin.add_argument("--config", help="TOML configuration file")
    groups = admin.add_subparsers(dest="group", required=True)

    def subject_flags(p: argparse.ArgumentParser, team: bool = True) -> None:
        p.add_argument("--user")
        p.add_argument("--service-account")
        if team:
            p.add_argument("--team")
        else:
            p.set_defaults(team=None)

    ns = groups.add_parser("namespace", help="namespaces").add_subparsers(dest="verb", required=True)
    for verb in ("create", "update", "delete"):
        p = ns.add_parser(verb)
        p.add_argument("name")
        if verb != "delete":
            p.add_argument("--description")
            p.add_argument("--public", action="store_true", help="allow anonymous pulls")
            if verb == "update":
                p.add_argument("--private", action="store_true")
    ns.add_parser("list")
    groups.choices["namespace"].set_defaults(run=_namespace)

    for kind in ("user", "service-account"):
        group = groups.add_parser(kind, help=f"{kind}s")
        verbs = group.add_subparsers(dest="verb", required=True)
        for verb in ("create", "delete"):
            p = verbs.add_parser(verb)
            p.add_argument("name")
            if verb == "create":
                p.add_argument("--description")
        verbs.add_parser("list")
        group.set_defaults(run=_principal_group(kind))

    cred = groups.add_parser("credential", help="access credentials")
    verbs = cred.add_subparsers(dest="verb", required=True)
    for verb in ("create", "list"):
        p = verbs.add_parser(verb)
        subject_flags(p, team=False)
        if verb == "create":
            p.add_argument("--description")
            p.add_argument("--expires-in", type=float, help="seconds until the credential expires")
    verbs.add_parser("revoke").add_argument("username")
    cred.set_defaults(run=_credential)

    team = groups.add_parser("team", help="teams")
    verbs = team.add_subparsers(dest="verb", required=True)
    for verb in ("create", "delete", "add-member", "remove-member"):
        p = verbs.add_parser(verb)
        p.add_argument("name")
        if verb == "create":
            p.add_argument("--description")
        if verb.endswith("member"):
            subject_flags(p, team=False)
    verbs.add_parser("list")
    team.set_defaults(run=_team)

    role = groups.add_parser("role", help="roles")
    verbs = role.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("create")
    p.add_argument("name")
    p.add_argument("--permissions", required=True, help="comma-separated: pull,push,list,delete")
    p.add_argument("--description")
    verbs.add_parser("delete").add_argument("name")
    verbs.add_parser("list")
    role.set_defaults(run=_role)

    for verb, present in (("grant", True), ("revoke", False)):
        p = groups.add_parser(verb, help=f"{verb} a role on a namespace")
        p.add_argument("role")
        p.add_argument("--namespace")
        p.add_argument("--all-namespaces", action="store_true")
        subject_flags(p)
        p.set_defaults(run=_binding_command(present))
    groups.add_parser("bindings", help="list role bindings").set_defaults(run=_bindings)

    p = groups.add_parser("pull-secret", help="emit a kubernetes.io/dockerconfigjson Secret (new credential)")
    p.add_argument("--service-account", required=True)
    p.add_argument("--k8s-namespace", default="default")
    p.add_argument("--name", help="Secret name (default registry-<service-account>)")
    p.add_argument("--registry-host", help="host[:port] clients pull from (default: server.public_url's)")
    p.add_argument("--expires-in", type=float)
    p.set_defaults(run=_pull_secret)

    k8s = groups.add_parser("k8s-identity", help="map a Kubernetes service account token subject")
    verbs = k8s.add_subparsers(dest="verb", required=True)
    for verb in ("bind", "unbind"):
        p = verbs.add_parser(verb)
        p.add_argument("--issuer", required=True)
        p.add_argument("--subject", required=True, help="system:serviceaccount:<namespace>:<name>")
        if verb == "bind":
            p.add_argument("--service-account", required=True)
        else:
            p.set_defaults(service_account=None)
    k8s.set_defaults(run=_k8s_identity)

    groups.add_parser("rotate-key", help="start a new token signing key").set_defaults(run=_rotate_key)
    p = groups.add_parser("audit", help="recent audit records")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(run=_audit)


def run_admin(args: argparse.Namespace, settings: Settings) -> int:
    root = Path(settings.storage.root)
    root.mkdir(parents=True, exist_ok=True)

    async def main() -> Any:
        db = await open_database(root / DB_NAME)
        try:
            stack = build_iam(settings, db)
            await stack.store.ensure_builtin_roles()
            return await args.run(stack, args, settings)
        finally:
            await db.aclose()

    try:
        result = trio.run(main)
    except IamError as err:
        print(json.dumps({"error": err.kind, "message": str(err)}), file=sys.stderr)
        return 1
    print(json.dumps(_jsonable(result), indent=2, default=str))
    return 0
