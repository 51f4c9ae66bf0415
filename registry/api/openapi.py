"""The OpenAPI 3.1 document of the management API (``GET /api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any


def _op(summary: str, status: str = "200", body: str | None = None, response: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"basic": []}, {"bearer": []}],
        "responses": {
            status: {"description": "success"}
            | (
                {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{response}"}}}}
                if response
                else {}
            ),
            "400": {"$ref": "#/components/responses/Error"},
            "401": {"$ref": "#/components/responses/Error"},
            "403": {"$ref": "#/components/responses/Error"},
            "404": {"$ref": "#/components/responses/Error"},
            "409": {"$ref": "#/components/responses/Error"},
        },
    }
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return op


def _param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_KIND = {"name": "kind", "in": "path", "required": True, "schema": {"enum": ["users", "service-accounts"]}}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Registry management API", "version": "1"},
    "servers": [{"url": "/api/v1"}],
    "components": {
        "securitySchemes": {
            "basic": {"type": "http", "scheme": "basic"},
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        },
        "responses": {
            "Error": {
                "description": "an error envelope",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}},
            }
        },
        "schemas": {
            "Errors": {
                "type": "object",
                "properties": {
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                        },
                    }
                },
            },
            "Event": {
                "type": "object",
                "required": ["id", "type", "time", "repository"],
                "properties": {
                    "id": {"type": "string", "description": "the cursor just past this event"},
                    "type": {"enum": ["manifest.pushed", "manifest.deleted", "tag.moved", "tag.deleted"]},
                    "time": {"type": "string", "format": "date-time"},
                    "repository": {"type": "string"},
                    "digest": {"type": ["string", "null"]},
                    "tag": {"type": ["string", "null"]},
                    "mediaType": {"type": ["string", "null"], "description": "manifest.pushed"},
                    "previousDigest": {"type": ["string", "null"], "description": "tag.moved"},
                    "reason": {"enum": ["api", "gc", "retention"], "description": "manifest.deleted"},
                },
            },
            "EventPage": {
                "type": "object",
                "properties": {
                    "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                    "cursor": {"type": "string", "description": "pass back as after= to resume"},
                    "truncated": {"type": "boolean", "description": "events after the given cursor were pruned"},
                },
            },
            "NamespaceIn": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "public": {"type": "boolean"},
                },
            },
            "NamespacePatch": {
                "type": "object",
                "properties": {"description": {"type": "string"}, "public": {"type": "boolean"}},
            },
            "Namespace": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "public": {"type": "boolean"},
                    "created": {"type": "number"},
                },
            },
            "PrincipalIn": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "description": {"type": "string"}},
            },
            "CredentialIn": {
                "type": "object",
                "properties": {"description": {"type": "string"}, "expires_in": {"type": "number", "minimum": 1}},
            },
            "IssuedCredential": {
                "type": "object",
                "properties": {
                    "username": {"type": "string"},
                    "password": {"type": "string", "description": "shown once"},
                    "principal": {"type": "string"},
                    "expires": {"type": ["number", "null"]},
                },
            },
            "TeamIn": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "description": {"type": "string"}},
            },
            "RoleIn": {
                "type": "object",
                "required": ["name", "permissions"],
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "permissions": {"type": "array", "items": {"enum": ["pull", "push", "list", "delete"]}},
                },
            },
            "Binding": {
                "type": "object",
                "required": ["role", "namespace", "subject_kind", "subject_name"],
                "properties": {
                    "role": {"type": "string"},
                    "namespace": {"type": "string", "description": "a namespace, or * for all"},
                    "subject_kind": {"enum": ["user", "service-account", "team"]},
                    "subject_name": {"type": "string"},
                },
            },
        },
    },
    "paths": {
        "/namespaces": {
            "get": _op("list namespaces"),
            "post": _op("create a namespace", "201", "NamespaceIn", "Namespace"),
        },
        "/namespaces/{name}": {
            "parameters": [_param("name")],
            "patch": _op("update a namespace", "200", "NamespacePatch", "Namespace"),
            "delete": _op("delete a namespace", "204"),
        },
        "/{kind}": {
            "parameters": [_KIND],
            "get": _op("list users or service accounts"),
            "post": _op("create a principal with a first credential", "201", "PrincipalIn"),
        },
        "/{kind}/{name}": {"parameters": [_KIND, _param("name")], "delete": _op("delete a principal", "204")},
        "/{kind}/{name}/credentials": {
            "parameters": [_KIND, _param("name")],
            "get": _op("list credentials (never secrets)"),
            "post": _op("create a credential", "201", "CredentialIn", "IssuedCredential"),
        },
        "/credentials/{username}": {"parameters": [_param("username")], "delete": _op("revoke a credential")},
        "/teams": {"get": _op("list teams"), "post": _op("create a team", "201", "TeamIn")},
        "/teams/{name}": {"parameters": [_param("name")], "delete": _op("delete a team", "204")},
        "/teams/{team}/members/{member_kind}/{name}": {
            "parameters": [
                _param("team"),
                {
                    "name": "member_kind",
                    "in": "path",
                    "required": True,
                    "schema": {"enum": ["user", "service-account"]},
                },
                _param("name"),
            ],
            "put": _op("add a member", "204"),
            "delete": _op("remove a member", "204"),
        },
        "/roles": {"get": _op("list roles"), "post": _op("create a custom role", "201", "RoleIn")},
        "/roles/{name}": {"parameters": [_param("name")], "delete": _op("delete a custom role", "204")},
        "/bindings": {
            "get": _op("list role bindings"),
            "post": _op("grant a role on a namespace", "201", "Binding"),
            "delete": _op("revoke a role binding", "204", "Binding"),
        },
        "/audit": {
            "get": _op(
                "audit records, newest first; filters: since, until (unix time), event (exact or prefix ending"
                " in '.' or '*'), actor, outcome, resource (prefix), after (id: oldest first from there), limit"
            )
        },
        "/pulls": {
            "post": _op(
                "report pulls served elsewhere (edges): body {pulls: [{repository, digest, time}]}; any"
                " authenticated principal, entries for repositories it cannot pull are ignored; answers"
                " {accepted, ignored}"
            )
        },
        "/retention": {
            "post": _op(
                "apply the retention policy file now; body {dry_run: bool}; answers the deleted manifests"
                " (a dry run executes the same transaction and rolls it back)"
            )
        },
        "/gc": {
            "post": _op(
                "run garbage collection now; body {dry_run: bool, grace_period_seconds: number}; answers what"
                " was (or would be) removed and bytes_freed"
            )
        },
        "/events": {
            "get": _op(
                "the event feed (docs/events.md): events after a cursor, of repositories the caller may pull"
                " (admin: all); query after=<cursor>|latest, namespace, wait (seconds to long-poll), limit"
                " (1-1000); answers {events, cursor, truncated}; with Accept: text/event-stream the same as"
                " server-sent events (id: = cursor; Last-Event-ID resumes)",
                response="EventPage",
            )
            | {
                "parameters": [
                    {"name": n, "in": "query", "required": False, "schema": {"type": t}}
                    for n, t in (("after", "string"), ("namespace", "string"), ("wait", "number"), ("limit", "integer"))
                ]
            }
        },
        "/scans/{repository}/{digest}": {
            "parameters": [_param("repository"), _param("digest")],
            "get": _op("the stored scan report of an image manifest (docs/scanning.md)"),
        },
    },
}
