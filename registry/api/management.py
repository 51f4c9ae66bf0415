"""The JSON management API (``/api/v1``), served by Quart on the same IamService as ``registry admin``.

Every endpoint needs an identity holding the registry-wide admin role (Basic credentials or a Bearer
token from ``/token``). Errors use the OCI error envelope. ``GET /api/v1/openapi.json`` describes it all.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict
from typing import Any

from quart import Blueprint, Response, request
from quart_trio import QuartTrio

from registry.api.auth import Authorizer, AuthResult
from registry.api.openapi import OPENAPI
from registry.api.scanreports import ScanReports
from registry.audit import query as audit_query
from registry.audit.query import AuditFilter
from registry.gc.collector import DEFAULT_GRACE_SECONDS
from registry.gc.maintenance import Maintenance
from registry.gc.retention import apply_retention
from registry.iam.model import Binding, Identity
from registry.iam.service import AuthFailure
from registry.iam.store import IamError
from registry.oci import errors as e
from registry.oci.digest import Digest
from registry.oci.names import validate_name
from registry.oci.wire import parse_basic
from registry.tokens.verifier import TokenError

log = logging.getLogger("registry.api")
_STATUS = {"not_found": 404, "conflict": 409, "invalid": 400}
_CODES = {"not_found": "NOT_FOUND", "conflict": "CONFLICT", "invalid": "INVALID"}


def _json(doc: Any, status: int = 200) -> Response:
    def plain(value: Any) -> Any:
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if hasattr(value, "__dataclass_fields__"):
            return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in asdict(value).items()}
        return value

    return Response(json.dumps(plain(doc)), status, content_type="application/json")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"errors": [{"code": code, "message": message}]})
    return Response(body, status, content_type="application/json", headers=headers or {})


_KINDS = {"users": "user", "service-accounts": "service-account"}


def _kind(kinds: str) -> str:
    kind = _KINDS.get(kinds)
    if kind is None:
        raise IamError("not_found", f"no such collection {kinds[:50]!r} (users, service-accounts)")
    return kind


async def authenticate(auth: Authorizer) -> Identity:
    """The authenticated caller of the current request (Basic credential or Bearer token), admin or not.

    Raises:
        RegistryError: ``UNAUTHORIZED`` without valid credentials, ``TOO_MANY_REQUESTS`` after repeated
            failures.
    """
    iam = auth.iam
    header = request.headers.get("Authorization", "")
    source = request.remote_addr or ""
    identity: Identity | None = None
    if header.lower().startswith("basic "):
        pair = parse_basic(header)
        if pair is not None:
            try:
                identity = await iam.authenticate(pair[0], pair[1], source)
            except AuthFailure as failure:
                if failure.retry_after is not None:
                    raise e.RegistryError(
                        e.TOO_MANY_REQUESTS, headers={"Retry-After": str(int(failure.retry_after) + 1)}
                    ) from None
    elif header.lower().startswith("bearer "):
        try:
            claims = auth.tokens.verify(header.split(" ", 1)[1].strip())
            kind, _, name = str(claims.get("sub", "")).partition(":")
            identity = await auth.store.identity(kind, name, claims.get("cid") or None)
        except TokenError:
            identity = None
    if identity is None:
        raise e.RegistryError(e.UNAUTHORIZED, headers={"WWW-Authenticate": 'Basic realm="registry"'})
    return identity


async def require_admin(auth: Authorizer) -> Identity:
    """The caller, who must hold the registry-wide admin role. Raises as :func:`authenticate`, and
    ``DENIED`` without the admin role."""
    identity = await authenticate(auth)
    if not identity.admin:
        raise e.RegistryError(e.DENIED, "the management API needs the admin role")
    return identity


def make_management(
    auth: Authorizer, maintenance: Maintenance | None = None, scans: ScanReports | None = None
) -> Blueprint:
    api = Blueprint("management", __name__, url_prefix="/api/v1")
    collector = None if maintenance is None else maintenance.collector
    collector_grace = DEFAULT_GRACE_SECONDS if collector is None else collector.grace_seconds
    iam = auth.iam

    async def principal() -> Identity:
        """The authenticated caller (Basic credential or Bearer token), admin or not. Raises 401/429."""
        return await authenticate(auth)

    async def admin() -> Identity:
        return await require_admin(auth)

    async def body() -> dict[str, Any]:
        raw = await request.get_data(cache=True, as_text=False)
        try:  # parsed here: quart's get_json(silent=True) still raised on a body that is not UTF-8
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            doc = None
        if not isinstance(doc, dict):
            raise IamError("invalid", "expected a JSON object body")
        try:  # JSON may escape lone surrogates ("\ud800"): text SQLite cannot store (found by schemathesis)
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise IamError("invalid", "the body holds text that is not valid Unicode") from None
        return doc

    @api.errorhandler(e.RegistryError)
    async def registry_error(err: e.RegistryError) -> Response:
        return _error(err.status, err.code.code, err.message or err.code.message, err.headers)

    @api.errorhandler(IamError)
    async def iam_error(err: IamError) -> Response:
        return _error(_STATUS.get(err.kind, 400), _CODES.get(err.kind, "INVALID"), str(err))

    @api.errorhandler(Exception)
    async def unexpected(err: Exception) -> Response:
        log.exception("management API error", exc_info=err)
        return _error(500, "UNKNOWN", "internal error")

    @api.get("/openapi.json")
    async def openapi() -> Response:
        return _json(OPENAPI)

    @api.get("/scans/<path:repo>/<digest>")
    async def scan_result(repo: str, digest: str) -> Response:
        await admin()
        report = None if scans is None else await scans.result(repo, digest)
        if report is None:
            raise IamError("not_found", f"no scan result for {repo[:200]}@{digest[:80]}")
        return _json(report)

    @api.get("/namespaces")
    async def list_namespaces() -> Response:
        await admin()
        return _json(await auth.store.list_namespaces())

    @api.post("/namespaces")
    async def create_namespace() -> Response:
        who = await admin()
        doc = await body()
        ns = await iam.create_namespace(
            str(doc.get("name", "")), str(doc.get("description", "")), bool(doc.get("public", False)), who.subject
        )
        return _json(ns, 201)

    @api.patch("/namespaces/<name>")
    async def update_namespace(name: str) -> Response:
        who = await admin()
        doc = await body()
        public = doc.get("public")
        ns = await iam.update_namespace(
            name, doc.get("description"), None if public is None else bool(public), who.subject
        )
        return _json(ns)

    @api.delete("/namespaces/<name>")
    async def delete_namespace(name: str) -> Response:
        who = await admin()
        await iam.delete_namespace(name, who.subject)
        return Response("", 204)

    @api.get("/<kinds>")
    async def list_principals(kinds: str) -> Response:
        await admin()
        return _json(await auth.store.list_principals(_kind(kinds)))

    @api.post("/<kinds>")
    async def create_principal(kinds: str) -> Response:
        who = await admin()
        doc = await body()
        kind, name = _kind(kinds), str(doc.get("name", ""))
        principal = await iam.create_principal(kind, name, str(doc.get("description", "")), who.subject)
        issued = await iam.create_credential(kind, name, "created with the principal", None, who.subject)
        return _json({"principal": principal, "credential": issued.as_json()}, 201)

    @api.delete("/<kinds>/<name>")
    async def delete_principal(kinds: str, name: str) -> Response:
        who = await admin()
        await iam.delete_principal(_kind(kinds), name, who.subject)
        return Response("", 204)

    @api.get("/<kinds>/<name>/credentials")
    async def list_credentials(kinds: str, name: str) -> Response:
        await admin()
        return _json(await auth.store.list_credentials(_kind(kinds), name))

    @api.post("/<kinds>/<name>/credentials")
    async def create_credential(kinds: str, name: str) -> Response:
        who = await admin()
        doc = await body()
        expires_in = doc.get("expires_in")
        if expires_in is not None and (isinstance(expires_in, bool) or not isinstance(expires_in, int | float)):
            raise IamError("invalid", "expires_in must be a number of seconds")  # was float(any): a 500
        issued = await iam.create_credential(
            _kind(kinds),
            name,
            str(doc.get("description", "")),
            None if expires_in is None else float(expires_in),
            who.subject,
        )
        return _json(issued.as_json(), 201)

    @api.delete("/credentials/<username>")
    async def revoke_credential(username: str) -> Response:
        who = await admin()
        return _json(await iam.revoke_credential(username, who.subject))

    @api.get("/teams")
    async def list_teams() -> Response:
        await admin()
        return _json([{"name": n, "description": d, "members": m} for n, d, m in await auth.store.list_teams()])

    @api.post("/teams")
    async def create_team() -> Response:
        who = await admin()
        doc = await body()
        await iam.create_team(str(doc.get("name", "")), str(doc.get("description", "")), who.subject)
        return _json({"name": doc.get("name")}, 201)

    @api.delete("/teams/<name>")
    async def delete_team(name: str) -> Response:
        who = await admin()
        await iam.delete_team(name, who.subject)
        return Response("", 204)

    @api.route("/teams/<team>/members/<kind>/<name>", methods=["PUT", "DELETE"])
    async def membership(team: str, kind: str, name: str) -> Response:
        who = await admin()
        if kind not in _KINDS.values():
            raise IamError("not_found", "members are user or service-account")
        await iam.set_membership(team, kind, name, request.method == "PUT", who.subject)
        return Response("", 204)

    @api.get("/roles")
    async def list_roles() -> Response:
        await admin()
        return _json(await auth.store.list_roles())

    @api.post("/roles")
    async def create_role() -> Response:
        who = await admin()
        doc = await body()
        permissions = doc.get("permissions", [])
        if isinstance(permissions, list) and not all(isinstance(p, str) for p in permissions):
            raise IamError("invalid", "permissions must be a list of strings")
        perms = ",".join(permissions) if isinstance(permissions, list) else str(permissions)
        role = await iam.create_role(str(doc.get("name", "")), perms, str(doc.get("description", "")), who.subject)
        return _json(role, 201)

    @api.delete("/roles/<name>")
    async def delete_role(name: str) -> Response:
        who = await admin()
        await iam.delete_role(name, who.subject)
        return Response("", 204)

    @api.get("/bindings")
    async def list_bindings() -> Response:
        await admin()
        return _json(await auth.store.list_bindings())

    @api.route("/bindings", methods=["POST", "DELETE"])
    async def change_binding() -> Response:
        who = await admin()
        doc = await body()
        binding = Binding(
            str(doc.get("role", "")),
            str(doc.get("namespace", "")),
            str(doc.get("subject_kind", "")),
            str(doc.get("subject_name", "")),
        )
        await iam.set_binding(binding, request.method == "POST", who.subject)
        return _json(binding, 201) if request.method == "POST" else Response("", 204)

    @api.get("/audit")
    async def audit() -> Response:
        await admin()
        limit = min(max(request.args.get("limit", 100, type=int) or 100, 1), 10000)
        args = request.args
        if not any(k in args for k in ("since", "until", "event", "actor", "outcome", "resource", "after")):
            return _json(await auth.store.audit_records(limit))
        flt = AuditFilter(
            since=args.get("since", type=float),
            until=args.get("until", type=float),
            event=args.get("event") or None,
            actor=args.get("actor") or None,
            outcome=args.get("outcome") or None,
            resource=args.get("resource") or None,
            after_id=args.get("after", 0, type=int) or 0,
            limit=limit,
            newest_first="after" not in args,
        )
        return _json(await auth.store.db.read(lambda conn: audit_query.records(conn, flt)))

    @api.post("/pulls")
    async def pulls() -> Response:
        """Pull times reported by edges (pulls served from their caches). Any principal may report, but only
        for repositories it may pull; the rest is ignored. Future times are clamped to now; the max is kept."""
        who = await principal()
        if collector is None:
            raise IamError("not_found", "pull tracking is not available here")
        entries = (await body()).get("pulls")
        if not isinstance(entries, list):
            raise IamError("invalid", 'expected {"pulls": [{"repository", "digest", "time"}, …]}')
        rights = AuthResult(who, None, await auth.store.namespace_flags())
        now, accepted = time.time(), 0
        for entry in entries:
            pulled = _pull_entry(entry)
            if pulled is not None and rights.allows(pulled[0], "pull"):
                collector.service.usage.pulled(pulled[0], pulled[1], min(pulled[2], now))
                accepted += 1
        return _json({"accepted": accepted, "ignored": len(entries) - accepted})

    @api.post("/retention")
    async def retention() -> Response:
        who = await admin()
        if maintenance is None:
            raise IamError("not_found", "retention is not available here")
        doc = await request.get_json(force=True, silent=True) or {}
        if not isinstance(doc, dict):
            raise IamError("invalid", "expected a JSON object body")
        await maintenance.collector.service.usage.flush(maintenance.meta.record_usage)
        policy = maintenance.policy.current()
        report = await apply_retention(maintenance.meta, policy, bool(doc.get("dry_run", False)), who.subject)
        return _json(report.as_json())

    @api.post("/gc")
    async def gc() -> Response:
        who = await admin()
        if collector is None:
            raise IamError("not_found", "garbage collection is not available here")
        doc = await request.get_json(force=True, silent=True) or {}
        if not isinstance(doc, dict):
            raise IamError("invalid", "expected a JSON object body")
        grace = doc.get("grace_period_seconds", collector_grace)
        if isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0:
            raise IamError("invalid", "grace_period_seconds must be a number >= 0")
        report = await collector.collect(float(grace), bool(doc.get("dry_run", False)), who.subject)
        return _json(report.as_json())

    return api


def _pull_entry(entry: Any) -> tuple[str, str, float] | None:
    """``(repository, digest, time)`` of one reported pull, or None when malformed."""
    if not isinstance(entry, dict):
        return None
    at = entry.get("time")
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        return None
    try:
        return validate_name(str(entry.get("repository", ""))), str(Digest.parse(str(entry.get("digest", "")))), at
    except (e.RegistryError, ValueError):
        return None


def install(
    app: QuartTrio, auth: Authorizer, maintenance: Maintenance | None = None, scans: ScanReports | None = None
) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.register_blueprint(make_management(auth, maintenance, scans))
