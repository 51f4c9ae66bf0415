"""schemathesis against the management API's own OpenAPI document (registry/api/openapi.py), served by a real
primary with auth on and called with the admin's credential.

Positive and negative (schema-violating) cases for every operation, bounded for CI (``FUZZ_API_EXAMPLES``,
default 15 per operation and mode). Checks: no 5xx at all (the management API has no intended 503), every
error is the JSON error envelope, and successful answers match the documented response schema.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode

from registry.api.openapi import OPENAPI
from tests.api.conftest import CHEAP_ARGON2
from tests.fuzz.conftest import tried
from tests.serverproc import RegistryProcess

pytestmark = pytest.mark.e2e
EXAMPLES = int(os.environ.get("FUZZ_API_EXAMPLES", "15"))
SCHEMA = schemathesis.openapi.from_dict(OPENAPI)
LOGS: list[Path] = []
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture(scope="module")
def admin_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, tuple[str, str]]]:
    data: Path = tmp_path_factory.mktemp("schemathesis") / "data"
    with RegistryProcess(
        data, "--auth", "token", env={
            **CHEAP_ARGON2,
            "REGISTRY__AUTH__FAILED_LOGIN_LIMIT": "100000",
            # GET /events long-polls up to `wait` seconds (clamped to this): keep each fuzz case short.
            "REGISTRY__EVENTS__FEED_MAX_WAIT_SECONDS": "1",
        },
    ) as proc:
        stored = json.loads((data / "admin-credential.json").read_text())
        LOGS.append(proc.log_path)
        yield proc.url, (str(stored["username"]), str(stored["password"]))
        assert proc.proc is not None and proc.proc.poll() is None, "the primary died"


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
@pytest.mark.parametrize("operation", OPERATIONS, ids=[f"{op.method.upper()} {op.path}" for op in OPERATIONS])
def test_management_api_operation(
    admin_api: tuple[str, tuple[str, str]], operation: object, mode: GenerationMode
) -> None:
    url, creds = admin_api
    strategy = operation.as_strategy(generation_mode=mode)  # type: ignore[attr-defined]
    unexpected: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(strategy)
        response = case.call(base_url=f"{url}/api/v1", auth=creds, timeout=30)
        tried("api: schemathesis")
        label = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}"
        if response.status_code >= 500:
            unexpected.append(label)
        elif response.status_code >= 400:
            try:
                errors = response.json().get("errors")
            except ValueError:
                errors = None
            if not (isinstance(errors, list) and errors and "code" in errors[0]):
                unexpected.append("not an error envelope: " + label)
        elif (
            mode is GenerationMode.POSITIVE and response.content and "json" in response.headers.get("content-type", "")
        ):
            try:
                case.operation.validate_response(response)
            except Exception as exc:  # schemathesis raises its own failure types
                unexpected.append(f"response does not match the schema: {label}: {str(exc)[:300]}")

    run()
    errors = [
        line
        for line in LOGS[-1].read_text(errors="replace").splitlines()
        if line.endswith(("Error", "Exception")) or "Error:" in line
    ]
    assert not unexpected, "\n".join(unexpected[:20] + errors[-10:])


def test_admin_can_still_log_in(admin_api: tuple[str, tuple[str, str]]) -> None:
    url, creds = admin_api
    assert httpx.get(f"{url}/api/v1/namespaces", auth=creds, timeout=30).status_code == 200


def test_lone_surrogates_in_a_body_are_a_400_not_a_500(admin_api: tuple[str, tuple[str, str]]) -> None:
    """Found by schemathesis: JSON text with an escaped lone surrogate reached SQLite and failed with 500."""
    url, creds = admin_api
    for path, doc in (
        ("/namespaces", '{"name": "surrogate-ns", "description": "\\ud800"}'),
        ("/teams", '{"name": "\\udfff"}'),
        ("/roles", '{"name": "r-\\ud83d", "permissions": ["pull"]}'),
    ):
        response = httpx.post(
            f"{url}/api/v1{path}", content=doc, auth=creds, timeout=30, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (path, response.status_code, response.text)
        assert response.json()["errors"][0]["code"], response.text
