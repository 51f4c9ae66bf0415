"""Kubernetes service-account tokens (projected, audience-bound JWTs) as passwords, verified against a
locally generated cluster issuer key and mapped to a registry service account."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.adminapi import AdminApi
from tests.api.conftest import CHEAP_ARGON2, admin
from tests.serverproc import RegistryProcess

ISSUER = "https://kubernetes.default.svc.cluster.local"
SUBJECT = "system:serviceaccount:apps:puller"


def _cluster_key(tmp_path: Path) -> tuple[rsa.RSAPrivateKey, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "cluster-key-1", "alg": "RS256", "use": "sig"})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return key, path


def _sa_token(key: rsa.RSAPrivateKey, **overrides: object) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": SUBJECT, "aud": ["registry.example"], "iat": now, "nbf": now, "exp": now + 600}
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "cluster-key-1"})


def test_service_account_token_as_password(tmp_path: Path) -> None:
    key, jwks = _cluster_key(tmp_path)
    env = {
        **CHEAP_ARGON2,
        "REGISTRY__AUTH__K8S_ISSUER": ISSUER,
        "REGISTRY__AUTH__K8S_JWKS": str(jwks),
        "REGISTRY__AUTH__K8S_AUDIENCE": "registry.example",
    }
    with RegistryProcess(tmp_path / "data", "--auth", "token", env=env) as proc:
        with AdminApi(proc) as api:  # set-up; the mapping itself is made with the CLI (it has no API)
            api.namespace("apps")
            api.service_account("cluster-puller")
            api.grant("reader", "apps", "cluster-puller")
        admin(
            proc,
            "k8s-identity",
            "bind",
            "--issuer",
            ISSUER,
            "--subject",
            SUBJECT,
            "--service-account",
            "cluster-puller",
        )
        scope = {"service": "registry", "scope": "repository:apps/web:pull,push"}

        def token_for(password: str) -> httpx.Response:
            return httpx.get(f"{proc.url}/token", params=scope, auth=("k8s", password))

        ok = token_for(_sa_token(key))
        assert ok.status_code == 200, ok.text
        claims = jwt.decode(ok.json()["token"], options={"verify_signature": False})
        assert claims["sub"] == "service-account:cluster-puller"
        assert claims["access"] == [{"type": "repository", "name": "apps/web", "actions": ["pull"]}]
        # Basic auth on /v2 with the same token works too.
        direct = httpx.get(f"{proc.url}/v2/apps/web/tags/list", auth=("k8s", _sa_token(key)))
        assert direct.status_code == 404  # authorized; the repository just does not exist yet
        other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        for bad in (
            _sa_token(key, aud=["someone-else"]),
            _sa_token(key, exp=int(time.time()) - 60),
            _sa_token(key, iss="https://evil.example"),
            _sa_token(key, sub="system:serviceaccount:apps:unbound"),
            _sa_token(other_key),
        ):
            assert token_for(bad).status_code == 401
