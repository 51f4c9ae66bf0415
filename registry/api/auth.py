"""Authentication and authorization of /v2 requests.

Every request — cache-friendly or not — is an authorization decision:
- ``Authorization: Bearer <jwt>``: the token is verified (ES256, issuer, audience, expiry) and its
  ``access`` claim must cover the request; otherwise 401 with ``error="insufficient_scope"`` so clients
  fetch a new token.
- ``Authorization: Basic``: the credential is verified (argon2id, behind a short-lived cache) and the
  principal's live role bindings decide; a valid credential without the right gets 403 ``DENIED``.
- nothing: anonymous, which may pull (and list) public namespaces; otherwise 401 with a Bearer
  challenge naming the scope the request needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

from registry.api.context import ApiContext
from registry.api.http import Request
from registry.iam.model import ANONYMOUS, LIST, Identity
from registry.iam.policy import namespace_permissions, repository_actions
from registry.iam.service import AuthFailure, IamService
from registry.iam.store import SqliteIamStore
from registry.oci import errors as e
from registry.oci.names import namespace_of
from registry.oci.scope import Scope, allowed_actions, challenge
from registry.oci.wire import parse_basic
from registry.tokens.service import TokenService
from registry.tokens.verifier import TokenError


@dataclass
class AuthResult:
    """Who is asking and what they may do, for handlers that decide more (mount, catalog, tags)."""

    identity: Identity
    token_access: object = None  # the verified token's access claim (Bearer), else None
    flags: dict[str, bool] = field(default_factory=dict)  # namespace → public (Basic/anonymous)

    def allows(self, repository: str, action: str) -> bool:
        if self.token_access is not None:
            return action in allowed_actions(self.token_access, "repository", repository)
        return action in repository_actions(self.identity, repository, self.flags.get)



@dataclass
class Authorizer:
    iam: IamService
    store: SqliteIamStore
    tokens: TokenService
    service: str
    realm: str  # empty: derived per request

    def realm_for(self, ctx: ApiContext, req: Request) -> str:
        if self.realm:
            return self.realm
        base = ctx.base_url(req)
        if not base:
            scheme = req.scope.get("scheme", "http")
            base = f"{scheme}://{req.header('host') or 'localhost'}"
        return f"{base}/token"

    def _unauthorized(
        self, ctx: ApiContext, req: Request, scopes: list[Scope], error: str | None = None, message: str | None = None
    ) -> e.RegistryError:
        value = challenge(self.realm_for(ctx, req), self.service, scopes, error)
        return e.RegistryError(e.UNAUTHORIZED, message, headers={"WWW-Authenticate": value})

    async def login(
        self, ctx: ApiContext, req: Request, username: str, password: str, denied: e.RegistryError
    ) -> Identity:
        """Verify a username/password pair (or a Kubernetes token as the password).

        Raises:
            RegistryError: ``denied`` for bad credentials; 429 ``TOOMANYREQUESTS`` with ``Retry-After``.
        """
        try:
            return await self.iam.authenticate(username, password, ctx.client_address(req))
        except AuthFailure as failure:
            if failure.retry_after is not None:
                raise e.RegistryError(
                    e.TOO_MANY_REQUESTS,
                    "too many failed logins; retry later",
                    headers={"Retry-After": str(max(1, int(failure.retry_after + 0.999)))},
                ) from None
            raise denied from None

    def challenge_error(self, ctx: ApiContext, req: Request) -> e.RegistryError:
        """401 for /v2/ without credentials: tells clients where the token service is."""
        return self._unauthorized(ctx, req, [])

    async def identify(self, ctx: ApiContext, req: Request, scopes: list[Scope]) -> AuthResult:
        """Authenticate the request. Raises 401 (bad credentials or token) or 429 (rate limited)."""
        header = req.header("authorization") or ""
        scheme = header.split(" ", 1)[0].lower()
        if scheme == "bearer":
            try:
                claims = self.tokens.verify(header.split(" ", 1)[1].strip() if " " in header else "")
            except TokenError as err:
                await self.store.audit(
                    "auth.token", "failure", "", None, ctx.client_address(req), {"reason": err.reason}
                )
                raise self._unauthorized(ctx, req, scopes, "invalid_token", "invalid or expired token") from None
            kind, _, name = str(claims.get("sub", "")).partition(":")
            identity = Identity(kind, name, claims.get("cid") or None)
            return AuthResult(identity, claims.get("access", []))
        flags = await self.store.namespace_flags()
        if scheme == "basic":
            pair = parse_basic(header)
            if pair is None:
                raise self._unauthorized(ctx, req, scopes, message="malformed Basic credentials")
            denied = self._unauthorized(ctx, req, scopes, message="invalid username or password")
            identity = await self.login(ctx, req, pair[0], pair[1], denied)
            return AuthResult(identity, None, flags)
        return AuthResult(ANONYMOUS, None, flags)

    async def authorize(self, ctx: ApiContext, req: Request, needed: list[tuple[Scope, bool]]) -> AuthResult:
        """Authenticate and check ``needed`` (scope, required) pairs; optional scopes only shape the
        challenge (a cross-repository mount's source). Returns the result for handlers that decide more.

        Raises:
            RegistryError: 401 with a challenge, 403 ``DENIED``, 404 ``NAME_UNKNOWN`` for a namespace that
                does not exist, 400 ``NAME_INVALID`` for a name without a namespace, 429.
        """
        scopes = [s for s, _ in needed]
        result = await self.identify(ctx, req, scopes)
        anonymous = result.identity.anonymous
        for scope, required in needed:
            if not required:
                continue
            if scope.type == "repository":
                if "/" not in scope.name:
                    raise e.RegistryError(
                        e.NAME_INVALID, f"repository names must be <namespace>/<name>; got {scope.name!r}"
                    )
                if not anonymous and result.token_access is None and namespace_of(scope.name) not in result.flags:
                    raise e.RegistryError(e.NAME_UNKNOWN, f"namespace {namespace_of(scope.name)!r} does not exist")
                allowed = all(result.allows(scope.name, action) for action in scope.actions)
            elif result.token_access is not None:  # registry:catalog:*
                allowed = bool(allowed_actions(result.token_access, scope.type, scope.name))
            else:
                allowed = not anonymous
            if allowed:
                continue
            await self._deny(ctx, req, result, scope, scopes)
        return result

    async def _deny(
        self, ctx: ApiContext, req: Request, result: AuthResult, scope: Scope, scopes: list[Scope]
    ) -> NoReturn:
        """Refuse ``scope``: a token lacking it → 401 insufficient_scope (clients fetch a new token);
        no credentials → 401 challenge; valid Basic credentials lacking it → 403 DENIED."""
        identity = result.identity
        if result.token_access is None and identity.anonymous:
            raise self._unauthorized(ctx, req, scopes)
        outcome = "insufficient_scope" if result.token_access is not None else "denied"
        await self.store.audit(
            "authz.denied",
            outcome,
            identity.subject,
            identity.credential,
            ctx.client_address(req),
            {"scope": str(scope)},
        )
        if result.token_access is not None:
            raise self._unauthorized(ctx, req, scopes, "insufficient_scope", "token lacks the needed access")
        raise e.RegistryError(e.DENIED, f"{identity.subject} may not {','.join(scope.actions)} {scope.name}")

    async def live_identity(self, result: AuthResult) -> Identity:
        """The identity with its current role bindings (tokens carry only a subject)."""
        if result.identity.anonymous or result.identity.grants or result.token_access is None:
            return result.identity
        found = await self.store.identity(result.identity.kind, result.identity.name, result.identity.credential)
        return found or ANONYMOUS

    async def listable_namespaces(self, result: AuthResult) -> Callable[[str], bool]:
        """A predicate: may this caller see the repositories of a namespace in the catalog?"""
        identity = await self.live_identity(result)
        flags = result.flags or await self.store.namespace_flags()
        return lambda namespace: (
            namespace in flags and LIST in namespace_permissions(identity, namespace, flags[namespace])
        )

    async def can_list(self, result: AuthResult, repository: str) -> bool:
        identity = await self.live_identity(result)
        flags = result.flags or await self.store.namespace_flags()
        return LIST in repository_actions(identity, repository, flags.get)
