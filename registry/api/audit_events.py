"""Audit records for /v2 requests: manifest and tag pushes and deletes, blob deletes, authorization
denials, and pulls (sampled: ``audit.pull_sample_rate``; pull times themselves are tracked separately and
cheaply by ``registry.storage.usage``). Each record carries actor, credential id, source address, user
agent, resource, outcome and request id (``X-Request-ID`` when the client sent one, else generated).

Called once per response by the route table; a failure to audit is logged, never turned into an error of
the request it describes."""

from __future__ import annotations

import logging
import random
import uuid

from registry.api.context import ApiContext
from registry.api.http import Request, Response
from registry.audit.chain import AuditEntry
from registry.oci.wire import parse_basic

log = logging.getLogger("registry.audit")


def _event(req: Request, response: Response) -> str | None:
    method, path, status = req.method, req.path, response.status
    if status in (401, 403):
        # An anonymous 401 is the first step of every token dance: only attempts with credentials count.
        return "authz.denied" if status == 403 or req.header("authorization") else None
    if "/manifests/" in path:
        reference = req.params.get("reference", "")
        tag = ":" not in reference
        if method == "PUT":
            return "manifest.push"
        if method == "DELETE":
            return "tag.delete" if tag else "manifest.delete"
        if method == "GET":
            return "manifest.pull"
    if method == "DELETE" and "/blobs/" in path and "/uploads/" not in path:
        return "blob.delete"
    return None


async def audit_request(ctx: ApiContext, req: Request, response: Response) -> None:
    if ctx.audit is None:
        return
    event = _event(req, response)
    if event is None:
        return
    if event == "manifest.pull" and (response.status >= 400 or random.random() >= ctx.settings.audit.pull_sample_rate):
        return
    identity = req.auth.identity if req.auth is not None else None
    credential = identity.credential if identity is not None else None
    header = req.header("authorization") or ""
    if credential is None and header.lower().startswith("basic "):
        pair = parse_basic(header)
        credential = None if pair is None else pair[0][:100]  # the username only, never the secret
    name, reference = req.params.get("name", ""), req.params.get("reference") or req.params.get("digest")
    resource = name + ("" if not reference else ("@" if ":" in reference else ":") + reference)
    detail: dict[str, object] = {"method": req.method, "status": response.status}
    digest = response.headers.get("Docker-Content-Digest")
    if digest:
        detail["digest"] = digest
    outcome = "success" if response.status < 400 else ("denied" if response.status in (401, 403) else "failure")
    entry = AuditEntry(
        event,
        outcome,
        identity.subject if identity is not None and not identity.anonymous else "",
        credential,
        ctx.client_address(req),
        detail,
        resource or req.path[:300],
        (req.header("x-request-id") or uuid.uuid4().hex)[:100],
        req.header("user-agent") or "",
    )
    try:
        await ctx.audit(entry)
    except Exception:
        log.exception("could not write the audit record for %s %s", req.method, req.path)
