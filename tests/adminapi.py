"""Set up IAM objects on a running registry (``--auth token``) through its management API (``/api/v1``),
with the admin credential the server wrote to ``<data>/admin-credential.json`` at its first start.

For fixtures and test set-up only: the API runs the same IamService as ``registry admin``, in milliseconds,
where each CLI process costs about 1.5 s of imports. Tests whose subject is the CLI run the CLI
(``tests/iam/test_admin_cli.py`` covers the commands the fixtures used to run).
"""

from __future__ import annotations

import json
from typing import Any, Self

import httpx

from tests.serverproc import RegistryProcess


class AdminApi:
    """An httpx client with the admin's Basic credential; every call asserts a 2xx answer."""

    def __init__(self, proc: RegistryProcess) -> None:
        stored = json.loads((proc.data / "admin-credential.json").read_text())
        self.creds: tuple[str, str] = (str(stored["username"]), str(stored["password"]))
        self.http = httpx.Client(base_url=proc.url, auth=self.creds, timeout=30)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, doc: dict[str, Any] | None = None) -> Any:
        """``method /api/v1<path>`` with a JSON body; the decoded answer (None when empty)."""
        r = self.http.request(method, f"/api/v1{path}", json=doc)
        assert 200 <= r.status_code < 300, (method, path, r.status_code, r.text)
        return r.json() if r.content else None

    def namespace(self, name: str, public: bool = False) -> None:
        self.call("POST", "/namespaces", {"name": name, "public": public})

    def role(self, name: str, *permissions: str) -> None:
        self.call("POST", "/roles", {"name": name, "permissions": list(permissions)})

    def service_account(self, name: str) -> tuple[str, str]:
        """A new service account; (username, password) of the credential created with it."""
        credential = self.call("POST", "/service-accounts", {"name": name})["credential"]
        return str(credential["username"]), str(credential["password"])

    def credential(self, service_account: str, expires_in: float | None = None) -> dict[str, Any]:
        """Another credential of ``service_account``: ``username``, ``password``, ``expires`` …"""
        doc = {} if expires_in is None else {"expires_in": expires_in}
        issued: dict[str, Any] = self.call("POST", f"/service-accounts/{service_account}/credentials", doc)
        return issued

    def grant(self, role: str, namespace: str, subject: str, kind: str = "service-account") -> None:
        doc = {"role": role, "namespace": namespace, "subject_kind": kind, "subject_name": subject}
        self.call("POST", "/bindings", doc)

    def revoke(self, role: str, namespace: str, subject: str, kind: str = "service-account") -> None:
        doc = {"role": role, "namespace": namespace, "subject_kind": kind, "subject_name": subject}
        self.call("DELETE", "/bindings", doc)

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest audit records (as ``registry admin audit --limit`` prints them)."""
        r = self.http.get("/api/v1/audit", params={"limit": limit})
        assert r.status_code == 200, r.text
        records: list[dict[str, Any]] = r.json()
        return records
