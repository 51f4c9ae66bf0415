"""Management API of the supply-chain extension (``/api/v1/supply-chain``), mounted by the composition root.

``GET /keys`` (public: the attestation public keys and their history); admin only: ``GET /sboms`` (the SBOM
index of ``?repository=`` [and ``&reference=``]), ``POST /sboms`` (``{"repository", "reference", "force"}``:
generate now) and ``GET /attestations`` (``?repository=&reference=``: verify). Errors use the OCI envelope.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import trio
from quart import Blueprint, Response, request
from quart_trio import QuartTrio

from registry.api.auth import Authorizer
from registry.api.management import require_admin
from registry.extensions.attest.keys import AttestationKeys
from registry.extensions.attest.verify import verify_image
from registry.extensions.sbom.generator import SbomError, SbomGenerator
from registry.oci import errors as e
from registry.oci.names import validate_name

log = logging.getLogger("registry.api")


def _json(doc: Any, status: int = 200) -> Response:
    return Response(json.dumps(doc), status, content_type="application/json")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"errors": [{"code": code, "message": message}]})
    return Response(body, status, content_type="application/json", headers=headers or {})


def _repository(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise e.RegistryError(e.NAME_INVALID, "repository is required")
    validate_name(value)
    return value


def make_supply_chain_api(auth: Authorizer, generator: SbomGenerator, keys: AttestationKeys) -> Blueprint:
    api = Blueprint("supply_chain", __name__, url_prefix="/api/v1/supply-chain")
    service = generator.service

    @api.errorhandler(e.RegistryError)
    async def registry_error(err: e.RegistryError) -> Response:
        return _error(err.status, err.code.code, err.message or err.code.message, err.headers)

    @api.errorhandler(SbomError)
    async def sbom_error(err: SbomError) -> Response:
        return _error(422, "UNSUPPORTED", str(err))

    @api.errorhandler(Exception)
    async def unexpected(err: Exception) -> Response:
        log.exception("supply-chain API error", exc_info=err)
        return _error(500, "UNKNOWN", "internal error")

    @api.get("/keys")
    async def public_keys() -> Response:
        history = await trio.to_thread.run_sync(keys.history)
        return _json({"keys": history})

    @api.get("/sboms")
    async def list_sboms() -> Response:
        await require_admin(auth)
        repo = _repository(request.args.get("repository"))
        reference = request.args.get("reference")
        subject = None if not reference else str((await service.get_manifest(repo, reference)).digest)
        return _json({"sboms": [row.as_dict() for row in await generator.index.list(repo, subject)]})

    @api.post("/sboms")
    async def generate() -> Response:
        await require_admin(auth)
        doc = await request.get_json(force=True, silent=True)
        if not isinstance(doc, dict):
            return _error(400, "INVALID", "expected a JSON object body")
        repo = _repository(doc.get("repository"))
        reference = doc.get("reference")
        if not isinstance(reference, str) or not reference:
            return _error(400, "INVALID", "reference is required")
        generated = await generator.generate(repo, reference, force=bool(doc.get("force")))
        return _json({"generated": [g.__dict__ for g in generated]}, 201 if generated else 200)

    @api.get("/attestations")
    async def verify() -> Response:
        await require_admin(auth)
        repo = _repository(request.args.get("repository"))
        reference = request.args.get("reference") or "latest"
        report = await verify_image(service, repo, reference, keys)
        return _json(report.as_dict())

    return api


def install(app: QuartTrio, auth: Authorizer, generator: SbomGenerator, keys: AttestationKeys) -> None:
    app.register_blueprint(make_supply_chain_api(auth, generator, keys))
