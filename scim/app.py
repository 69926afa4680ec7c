"""The SCIM 2.0 service under ``/scim/v2`` (RFC 7644).

Every request needs a unit's bearer token (``idp scim-tokens create``); anything
else gets 401 in the SCIM error schema. The token decides the unit, and with it
every record the request can see. Responses are ``application/scim+json``;
requests may be ``application/scim+json`` or ``application/json``. The blueprint is
exempt from CSRF (no cookies are used) and answers its own errors in SCIM form.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, g, request
from flask_wtf.csrf import CSRFProtect
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    Filter,
    Meta,
    Patch,
    ServiceProviderConfig,
    Sort,
)
from werkzeug.exceptions import HTTPException

from idp.errors import is_database_down, request_id
from idp.provisioning import scim_tokens
from idp.provisioning import service as provisioning
from idp.services import settings
from idp.web import json_limits
from scim import bulk, search
from scim.casting import parse_etags, version_from_etags
from scim.errors import ScimError, error_response, scim_json
from scim.projection import parse_names
from scim.resources import Context, Result, Selection, dispatch
from scim.schema import LIST_RESPONSE, resource_type_documents, schema_documents

log = logging.getLogger("idp.scim")

PREFIX = "/scim/v2"
bp = Blueprint("scim", __name__, url_prefix=PREFIX)


def setup_scim(app: Flask, csrf: CSRFProtect) -> None:
    """Register the SCIM blueprint, exempt from CSRF (bearer tokens, no cookies)."""
    csrf.exempt(bp)
    app.register_blueprint(bp)


def ctx() -> Context:
    return g.scim_context


def base_url() -> str:
    return settings().issuer.rstrip("/") + PREFIX


@bp.before_request
def _authenticate() -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ScimError(401, "a bearer token is required")
    caller = scim_tokens.authenticate(token.strip())
    if caller is None:
        raise ScimError(401, "the token is invalid or revoked")
    g.scim_context = Context(
        unit_id=caller.unit_id,
        actor=provisioning.scim_actor(caller.token_id, caller.name),
        base=base_url(),
        extra_names=provisioning.extra_names(caller.unit_id),
    )


@bp.errorhandler(ScimError)
def _scim_error(err: ScimError) -> Response:
    return error_response(err)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    if code == 413:
        return error_response(ScimError(413, _too_large()))
    scim_type = "invalidSyntax" if code == 400 else None
    return error_response(ScimError(code, exc.description or exc.name or "error", scim_type))


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    if is_database_down(exc):
        log.error("database unavailable request_id=%s", request_id(), exc_info=exc)
        return error_response(ScimError(503, f"temporarily unavailable (request {request_id()})"))
    log.exception("unhandled SCIM error request_id=%s", request_id())
    return error_response(ScimError(500, f"internal error (request {request_id()})"))


# -- request helpers -----------------------------------------------------------------


def body() -> Any:
    """The JSON body; 413 over the payload limit, 400 ``invalidSyntax`` when not JSON
    or nested deeper than :data:`idp.web.json_limits.MAX_DEPTH` (checked before parsing,
    so never a ``RecursionError``), 400 ``invalidValue`` when a string in it holds a
    NUL character."""
    if (request.content_length or 0) > bulk.MAX_PAYLOAD:
        raise ScimError(413, _too_large())
    raw = request.get_data(cache=True)
    if len(raw) > bulk.MAX_PAYLOAD:
        raise ScimError(413, _too_large())
    try:
        doc = json_limits.loads(raw)
    except json_limits.JsonTooDeep as exc:
        raise ScimError(400, f"the body is {exc}", "invalidSyntax") from None
    except ValueError:
        raise ScimError(400, "the body is not valid JSON", "invalidSyntax") from None
    if _has_nul(doc):
        raise ScimError(400, "text values must not contain NUL characters", "invalidValue")
    return doc


def _too_large() -> str:
    """The 413 detail, naming the limit as RFC 7644 §3.7.4 asks."""
    return f"the request exceeds the maxPayloadSize ({bulk.MAX_PAYLOAD} bytes)"


def _has_nul(doc: Any) -> bool:
    """True when any key or string in ``doc`` holds a NUL (``\\u0000``): no SCIM
    attribute may carry one, and PostgreSQL text cannot store it."""
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def selection() -> Selection:
    args = {k.lower(): v for k, v in request.args.items()}
    attributes = parse_names(args.get("attributes"))
    excluded = parse_names(args.get("excludedattributes"))
    if attributes and excluded:
        raise ScimError(400, "attributes and excludedAttributes cannot be combined",
                        "invalidValue")
    return Selection(attributes, excluded)


def if_match() -> int | None:
    return version_from_etags(parse_etags(request.headers.get("If-Match")))


def respond(result: Result) -> Response:
    if result.body is None:
        resp = Response(status=result.status)
        for name, value in result.headers.items():
            resp.headers[name] = value
        return resp
    return scim_json(result.body, result.status, result.headers)


# -- discovery (RFC 7644 §4) ---------------------------------------------------------


@bp.get("/ServiceProviderConfig")
def service_provider_config() -> Response:
    """What this service supports, exactly."""
    base = ctx().base
    spc = ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=True, max_operations=bulk.max_operations(),
                  max_payload_size=bulk.MAX_PAYLOAD),
        filter=Filter(supported=True, max_results=search.MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[AuthenticationScheme(
            type="oauthbearertoken",
            name="Bearer token",
            description="A business unit's SCIM token (idp scim-tokens create)",
            primary=True,
        )],
        meta=Meta(resource_type="ServiceProviderConfig",
                  location=f"{base}/ServiceProviderConfig"),
    )
    return scim_json(spc.model_dump())


def _listing(resources: list[dict[str, Any]]) -> Response:
    return scim_json({
        "schemas": [LIST_RESPONSE],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    })


def _one_of(resources: list[dict[str, Any]], resource_id: str) -> Response:
    for doc in resources:
        if doc["id"].lower() == resource_id.lower():
            return scim_json(doc)
    raise ScimError(404, f"{resource_id} not found")


@bp.get("/ResourceTypes")
def resource_types() -> Response:
    return _listing(resource_type_documents(ctx().extra_names, ctx().base))


@bp.get("/ResourceTypes/<resource_id>")
def resource_type(resource_id: str) -> Response:
    return _one_of(resource_type_documents(ctx().extra_names, ctx().base), resource_id)


@bp.get("/Schemas")
def schemas() -> Response:
    return _listing(schema_documents(ctx().extra_names, ctx().base))


@bp.get("/Schemas/<schema_id>")
def schema(schema_id: str) -> Response:
    return _one_of(schema_documents(ctx().extra_names, ctx().base), schema_id)


# -- resources -----------------------------------------------------------------------


@bp.route("/<any(Users, Groups):kind>", methods=["GET", "POST"])
def collection(kind: str) -> Response:
    if request.method == "GET":
        query = search.query_from_args(request.args)
        run = search.search_users if kind == "Users" else search.search_groups
        return respond(run(ctx(), query))
    return respond(dispatch(ctx(), "POST", kind, None, body(), None, selection()))


@bp.post("/<any(Users, Groups):kind>/.search")
def typed_search(kind: str) -> Response:
    query = search.query_from_body(body())
    run = search.search_users if kind == "Users" else search.search_groups
    return respond(run(ctx(), query))


@bp.post("/.search")
def root_search() -> Response:
    return respond(search.search_all(ctx(), search.query_from_body(body())))


@bp.route("/<any(Users, Groups):kind>/<resource_id>",
          methods=["GET", "PUT", "PATCH", "DELETE"])
def item(kind: str, resource_id: str) -> Response:
    method = request.method
    data = body() if method in ("PUT", "PATCH") else None
    result = dispatch(ctx(), method, kind, resource_id, data, if_match(), selection())
    if method == "GET":
        wanted = parse_etags(request.headers.get("If-None-Match")) or []
        if result.headers.get("ETag") in wanted or "*" in wanted:
            return Response(status=304, headers={"ETag": result.headers["ETag"]})
    return respond(result)


@bp.post("/Bulk")
def bulk_request() -> Response:
    return scim_json(bulk.run(ctx(), body()))


# -- methods an endpoint does not have: 405 with Allow (RFC 7231 §6.5.5) ---------------

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _not_allowed(path: str, allowed: list[str]) -> Response:
    allow = ", ".join([*allowed, "HEAD"] if "GET" in allowed else allowed)
    raise ScimError(405, f"{request.method} is not allowed on {path}; allowed: {allow}",
                    headers={"Allow": allow})


@bp.route("/<any(ServiceProviderConfig, ResourceTypes, Schemas):kind>",
          methods=["POST", "PUT", "PATCH", "DELETE"])
@bp.route("/<any(ResourceTypes, Schemas):kind>/<path:resource_id>",
          methods=["POST", "PUT", "PATCH", "DELETE"])
def read_only(kind: str, resource_id: str | None = None) -> Response:
    """The discovery endpoints are read-only (RFC 7644 §4)."""
    return _not_allowed(f"/{kind}" + (f"/{resource_id}" if resource_id else ""), ["GET"])


@bp.route("/<any(Users, Groups):kind>", methods=["PUT", "PATCH", "DELETE"])
def collection_not_allowed(kind: str) -> Response:
    return _not_allowed(f"/{kind}", ["GET", "POST"])


@bp.route("/<any(Users, Groups):kind>/<resource_id>", methods=["POST"])
def item_not_allowed(kind: str, resource_id: str) -> Response:
    return _not_allowed(f"/{kind}/{resource_id}", ["GET", "PUT", "PATCH", "DELETE"])


@bp.route("/Bulk", methods=["GET", "PUT", "PATCH", "DELETE"])
def bulk_not_allowed() -> Response:
    return _not_allowed("/Bulk", ["POST"])


@bp.route("/<path:rest>", methods=ALL_METHODS)
def unknown(rest: str) -> Response:
    raise ScimError(404, f"no SCIM endpoint /{rest}")
