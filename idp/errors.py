"""Error answers: never a stack trace, always a request id in the log.

* Unreachable Redis or database: 503 with a clear message (fail closed).
* Any other unexpected error: 500 with the request id only.
* ``application/problem+json`` (RFC 9457) under the administration API
  (``/api/``, :func:`problem_response`); OAuth-style JSON for the other API paths
  and clients that ask for JSON; an HTML page otherwise.
"""

from __future__ import annotations

import json
import logging
import secrets
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from idp.ephemeral import EphemeralUnavailable

log = logging.getLogger("idp")

JSON_PREFIXES = ("/token", "/userinfo", "/introspect", "/revoke", "/jwks", "/.well-known", "/scim")


def request_id() -> str:
    if "request_id" not in g:
        g.request_id = request.headers.get("X-Request-Id", "")[:64] or secrets.token_hex(8)
    return g.request_id


def wants_json() -> bool:
    if request.path.startswith(JSON_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


PROBLEM_TYPE_PREFIX = "urn:unitgate:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_PATH_PREFIX = "/api/"


def problem_response(
    status: int,
    code: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An RFC 9457 problem document: ``type`` ``urn:unitgate:problem:<code>``, the
    status's phrase as ``title``, ``detail``, the stable ``code``, the request path
    as ``instance``, the request id, and ``errors`` (JSON Pointers into the request)
    when given. Never cached."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.path,
        "request_id": request_id(),
    }
    if errors is not None:
        body["errors"] = errors
    resp = Response(json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    resp.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


def error_response(status: int, error: str, description: str) -> Response:
    """An error in the shape the client expects (problem details, OAuth-style JSON
    or an HTML page)."""
    if request.path.startswith(PROBLEM_PATH_PREFIX):
        return problem_response(status, error, description)
    if wants_json():
        resp = jsonify({"error": error, "error_description": description})
    else:
        resp = Response(
            render_template(
                "error.html",
                status=status,
                error=error,
                description=description,
                request_id=request_id(),
            ),
            mimetype="text/html",
        )
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


def setup_errors(app: Flask) -> None:
    @app.before_request
    def _assign_request_id() -> None:
        request_id()

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        response.headers["X-Request-Id"] = request_id()
        return response

    @app.errorhandler(EphemeralUnavailable)
    def _ephemeral_down(exc: EphemeralUnavailable) -> Response:
        log.error("ephemeral store unavailable (%s) request_id=%s", exc, request_id())
        return _unavailable()

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        code = exc.code or 500
        name = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}.get(
            code, (exc.name or "error").lower().replace(" ", "_")
        )
        if request.path.startswith(PROBLEM_PATH_PREFIX):
            allowed = getattr(exc, "valid_methods", None)
            headers = {"Allow": ", ".join(sorted(allowed))} if allowed else None
            return problem_response(code, name, exc.description or exc.name or "", None, headers)
        return error_response(code, name, exc.description or exc.name or "")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if is_database_down(exc):
            log.error("database unavailable request_id=%s", request_id(), exc_info=exc)
            return _unavailable()
        log.exception("unhandled error request_id=%s", request_id())
        return error_response(
            500, "server_error", f"An internal error occurred (request id {request_id()})."
        )


def _unavailable() -> Response:
    resp = error_response(
        503,
        "temporarily_unavailable",
        f"The service is temporarily unavailable; please retry (request id {request_id()}).",
    )
    resp.headers["Retry-After"] = "5"
    return resp


def is_database_down(exc: Exception) -> bool:
    """True when ``exc`` says the database cannot be reached (answered with 503)."""
    from idp.store.health import is_connection_error

    return is_connection_error(exc)
