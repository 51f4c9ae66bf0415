"""The token endpoint (Docker token-auth spec) and the JWKS that edge nodes verify tokens with.

``GET /token?service=…&scope=…[&scope=…][&offline_token=true]`` with optional Basic auth, and the OAuth2
form ``POST /token`` (``grant_type=password|refresh_token``) that containerd sends first. The answer grants
the intersection of what was asked and what is allowed; a partial grant is not an error.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from registry.api.auth import Authorizer
from registry.api.context import ApiContext
from registry.api.http import Request, Response
from registry.iam.model import ANONYMOUS, Identity
from registry.iam.policy import grant_scopes
from registry.oci import errors as e
from registry.oci.scope import parse_scopes
from registry.oci.wire import parse_basic
from registry.tokens.verifier import TokenError

FORM_LIMIT = 64 * 1024


def _json(doc: Any, status: int = 200) -> Response:
    return Response(status, {"Content-Type": "application/json", "Cache-Control": "no-store"}, json.dumps(doc).encode())


def _unauthorized(message: str) -> e.RegistryError:
    return e.RegistryError(e.UNAUTHORIZED, message, headers={"WWW-Authenticate": 'Basic realm="registry"'})


async def _login(auth: Authorizer, ctx: ApiContext, req: Request, username: str, password: str) -> Identity:
    return await auth.login(ctx, req, username, password, _unauthorized("invalid username or password"))


async def _answer(
    auth: Authorizer, identity: Identity, scope_values: list[str], offline: bool, source: str
) -> Response:
    await auth.tokens.refresh()
    requested = parse_scopes(scope_values)
    flags = await auth.store.namespace_flags()
    granted = grant_scopes(identity, requested, flags.get)
    token, claims = auth.tokens.issue(identity, granted)
    await auth.store.audit(
        "token.issue",
        "success",
        identity.subject,
        identity.credential,
        source,
        {"requested": [str(s) for s in requested], "granted": [str(s) for s in granted], "jti": claims["jti"]},
    )
    body: dict[str, Any] = {
        "token": token,
        "access_token": token,
        "expires_in": int(claims["exp"]) - int(claims["iat"]),
        "issued_at": datetime.fromtimestamp(int(claims["iat"]), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if offline and not identity.anonymous:
        body["refresh_token"] = auth.tokens.issue_refresh(identity)
    return _json(body)


async def token_get(ctx: ApiContext, req: Request, auth: Authorizer) -> Response:
    header = req.header("authorization") or ""
    identity = ANONYMOUS
    if header.lower().startswith("basic "):
        pair = parse_basic(header)
        if pair is None:
            raise _unauthorized("malformed Basic credentials")
        identity = await _login(auth, ctx, req, *pair)
    offline = (req.arg("offline_token") or "").lower() == "true"
    return await _answer(auth, identity, req.args("scope"), offline, ctx.client_address(req))


async def token_post(ctx: ApiContext, req: Request, auth: Authorizer) -> Response:
    form = parse_qs((await req.read(FORM_LIMIT)).decode("utf-8", "replace"), keep_blank_values=True)

    def field(name: str) -> str:
        return (form.get(name) or [""])[0]

    grant_type = field("grant_type")
    if grant_type == "password":
        identity = await _login(auth, ctx, req, field("username"), field("password"))
    elif grant_type == "refresh_token":
        await auth.tokens.refresh()
        try:
            claims = auth.tokens.verify_refresh(field("refresh_token"))
        except TokenError:
            raise _unauthorized("invalid refresh token") from None
        kind, _, name = str(claims.get("sub", "")).partition(":")
        found = await auth.store.identity(kind, name, claims.get("cid") or None)
        if found is None:
            raise _unauthorized("refresh token no longer valid")
        identity = found
    else:
        raise e.RegistryError(e.GRANT_UNSUPPORTED, f"unsupported grant_type {grant_type[:50]!r}")
    offline = field("access_type") == "offline"
    return await _answer(auth, identity, field("scope").split(), offline, ctx.client_address(req))


async def jwks(ctx: ApiContext, req: Request, auth: Authorizer) -> Response:
    await auth.tokens.refresh()
    return _json(auth.tokens.jwks())
