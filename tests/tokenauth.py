"""An httpx auth flow doing what registry clients do: on a Bearer challenge, fetch a token from the
realm with Basic credentials and the challenged scope, then retry (the Docker token-auth dance)."""

from __future__ import annotations

import re
from collections.abc import Generator

import httpx

_PARAM = re.compile(r'(\w+)="([^"]*)"')


class DockerTokenAuth(httpx.Auth):
    requires_response_body = True

    def __init__(self, username: str | None, password: str | None) -> None:
        self.basic = httpx.BasicAuth(username, password) if username is not None and password is not None else None
        self.tokens: dict[str, str] = {}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield request
        challenge = response.headers.get("www-authenticate", "")
        if response.status_code != 401 or not challenge.lower().startswith("bearer "):
            return
        params = dict(_PARAM.findall(challenge))
        query: dict[str, str] = {"service": params.get("service", "")}
        if params.get("scope"):
            query["scope"] = params["scope"]
        token_request = httpx.Request("GET", params["realm"], params=query)
        if self.basic is not None:
            token_request = next(self.basic.auth_flow(token_request))
        token_response = yield token_request
        if token_response.status_code != 200:
            return
        token_response.read()
        request.headers["Authorization"] = f"Bearer {token_response.json()['token']}"
        yield request
