"""The OpenAPI 3.1 document of the administration API, generated from the
endpoints' own declarations (:data:`idp.api.endpoint.REGISTRY`) and pydantic
models, never written by hand: what is documented is what is validated and
serialised. Served at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import re
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from idp.api.endpoint import MAX_PATH_PARAM, REGISTRY, Endpoint
from idp.api.problems import MEDIA_TYPE, ProblemDocument
from idp.rights.admin_clients import SCOPE

REF = "#/components/schemas/{model}"
PARAM_RE = re.compile(r"{([a-z_]+)}")
# Answers any endpoint may give (authentication, input, limits, availability).
COMMON_STATUSES = (400, 401, 403, 404, 406, 409, 413, 415, 422, 429, 503)
DESCRIPTIONS = {
    200: "OK", 201: "Created", 204: "No content", 400: "Malformed request",
    401: "No valid credentials", 403: "Not permitted", 404: "Not found, or not yours to see",
    406: "Not acceptable", 409: "Conflict with the current state",
    413: "Request too large", 415: "Body is not JSON", 422: "Invalid input",
    429: "Too many requests", 503: "Temporarily unavailable",
}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _schema_ref(annotation: Any, refs: Any) -> dict[str, Any]:
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        return {"type": "array", "items": _schema_ref(item, refs)}
    return dict(refs[(annotation, "serialization")])


def _parameters(ep: Endpoint, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_PATH_PARAM,
                       "pattern": "^[\\x21-\\x7e]+$"},
        }
        for name in PARAM_RE.findall(ep.path)
    ]
    if ep.query is None:
        return params
    schema = ep.query.model_json_schema(ref_template=REF, mode="validation")
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in schema.get("required", []),
            "schema": prop,
        }
        if description:
            param["description"] = description
        if "array" in str(prop.get("type")) or "items" in prop or any(
            "items" in alt for alt in prop.get("anyOf", [])
        ):
            param["style"], param["explode"] = "form", True
        params.append(param)
    schemas.update(schema.get("$defs", {}))
    return params


def _operation(ep: Endpoint, refs: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    problem = {MEDIA_TYPE: {"schema": {"$ref": REF.format(model="ProblemDocument")}}}
    responses: dict[str, Any] = {}
    if ep.response is None:
        responses["204"] = {"description": DESCRIPTIONS[204]}
    elif ep.response_media is not None:
        responses[str(ep.status)] = {
            "description": DESCRIPTIONS.get(ep.status, "OK"),
            "content": {ep.response_media: {"schema": (
                {"type": "string"} if ep.response is str else _schema_ref(ep.response, refs)
            )}},
        }
    else:
        responses[str(ep.status)] = {
            "description": DESCRIPTIONS.get(ep.status, "OK"),
            "content": {"application/json": {"schema": _schema_ref(ep.response, refs)}},
        }
    for status in sorted({*COMMON_STATUSES, *ep.extra_statuses}):
        responses[str(status)] = {
            "description": DESCRIPTIONS.get(status, "Error"), "content": problem
        }
    op: dict[str, Any] = {
        "operationId": ep.operation_id,
        "summary": ep.summary,
        "tags": [ep.tag],
        "parameters": _parameters(ep, schemas),
        "responses": responses,
    }
    description = ep.description
    if ep.permission:
        needs = f"Needs the permission `{ep.permission}` in the unit."
        description = f"{description}\n\n{needs}".strip()
        op["x-permission"] = ep.permission
    if description:
        op["description"] = description
    if ep.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": dict(refs[(ep.body, "validation")])}},
        }
    elif ep.body_media is not None:
        op["requestBody"] = {
            "required": True, "content": {ep.body_media: {"schema": {"type": "string"}}},
        }
    if ep.method in ("POST", "PUT", "PATCH", "DELETE"):
        op["parameters"].append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Carry out this write at most once (24 hours).",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                           "pattern": "^[\\x21-\\x7e]+$"},
            }
        )
    return op


def document(issuer: str) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document for a server at ``issuer``."""
    wanted: list[tuple[type[BaseModel], Any]] = [(ProblemDocument, "serialization")]
    for ep in REGISTRY:
        if ep.response_media is None or ep.response is not str:
            wanted += [(m, "serialization") for m in _models_in(ep.response)]
        if ep.body is not None:
            wanted.append((ep.body, "validation"))
    unique = list(dict.fromkeys(wanted))
    refs, top = models_json_schema(unique, ref_template=REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for ep in REGISTRY:
        paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(ep, refs, schemas)
    tags = sorted({ep.tag for ep in REGISTRY})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Unitgate administration API",
            "version": "1",
            "description": (
                "Customers, accesses, rights, invitations and the operator's staff. "
                "Errors are application/problem+json (RFC 9457). See docs/admin-api.md."
            ),
        },
        "servers": [{"url": issuer.rstrip("/") + "/api/v1"}],
        "tags": [{"name": t} for t in tags],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "adminClient": {
                    "type": "oauth2",
                    "description": "A token of an admin client (idp admin-clients create).",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": issuer.rstrip("/") + "/token",
                            "scopes": {SCOPE: "Administer what the client acts for"},
                        }
                    },
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "ug_session",
                    "description": "The console's own session; writes need X-CSRF-Token.",
                },
            },
        },
        "security": [{"adminClient": [SCOPE]}, {"session": []}],
    }
