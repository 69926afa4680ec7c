"""Error answers: never a stack trace, always a request id in the log.

* Unreachable Redis or database: 503 with a clear message (fail closed).
* Any other unexpected error: 500 with the request id only.
* ``application/problem+json`` (RFC 9457) under the administration API
  (``/api/``, :func:`problem_response`); OAuth-style JSON for the other API paths
  and clients that ask for JSON; an HTML page otherwise.
* The HTML page speaks the page's language: a heading and a human sentence chosen
  by the error code (:data:`PAGE_TEXTS`, else by the status), the technical
  description only when the catalogue translates it (:data:`KNOWN_DETAILS`) or the
  page is English, a way back (the merchant when the caller knows a safe address,
  else the start page) and the code and request id small, for support.
"""

from __future__ import annotations

import json
import logging
import secrets
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, default_exceptions
from werkzeug.routing import BuildError

from idp.ephemeral import EphemeralUnavailable
from idp.i18n import current_language

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


_CANNOT_START = (
    _l("This sign-in cannot start"),
    _l("The link that brought you here is incomplete or not valid. Please go back to "
       "the shop and try again. If it happens again, tell the shop."),
)
_DENIED = (
    _l("You cannot continue here"),
    _l("You do not have access to this. If you think you should, contact your "
       "company's administrator."),
)
_UNAVAILABLE = (
    _l("Unitgate is briefly unavailable"),
    _l("Please try again in a moment."),
)
# (heading, sentence) of the HTML error page by error code.
PAGE_TEXTS: dict[str, tuple[Any, Any]] = {
    "not_found": (
        _l("Page not found"),
        _l("There is no page at this address. The link may be old or mistyped."),
    ),
    "method_not_allowed": (
        _l("This did not work"),
        _l("This page cannot be used like this. Please go back and try again."),
    ),
    "invalid_request": _CANNOT_START,
    "invalid_client": _CANNOT_START,
    "unauthorized_client": _CANNOT_START,
    "unsupported_response_type": _CANNOT_START,
    "invalid_scope": _CANNOT_START,
    "invalid_saml_request": _CANNOT_START,
    "access_denied": _DENIED,
    "forbidden": _DENIED,
    "slow_down": (
        _l("Too many attempts"),
        _l("Please wait a few minutes, then try again."),
    ),
    "too_many_requests": (
        _l("Too many attempts"),
        _l("Please wait a few minutes, then try again."),
    ),
    "upstream_unavailable": (
        _l("Your company's sign-in did not answer"),
        _l("Please try again in a moment. If it keeps happening, tell your company's "
           "administrator."),
    ),
    "temporarily_unavailable": _UNAVAILABLE,
    # not an error code: the page of a form posted without a valid CSRF token
    "form_expired": (
        _l("This form has expired"),
        _l("Please go back, reload the page and try again."),
    ),
    "server_error": (
        _l("Something went wrong on our side"),
        _l("Please try again in a moment. If it keeps happening, tell support the "
           "request id below."),
    ),
}
_BY_STATUS_CLASS: dict[int, tuple[Any, Any]] = {
    4: (_l("This did not work"), _l("The request could not be handled. Please go back "
                                    "and try again.")),
    5: PAGE_TEXTS["server_error"],
}
# Technical descriptions that error pages show translated (the catalogue has them;
# listed so that extraction finds them). Others are shown only on English pages.
KNOWN_DETAILS = (
    _l("The client is not known here."),
    _l("The request names no client (client_id)."),
    _l("The request names no redirect_uri."),
    _l("The redirect_uri is not registered for this client."),
    _l("This sign-in request has expired or was started in another browser."),
    _l("This sign-in request was already completed."),
    _l("This sign-in request has expired; please start again."),
    _l("This sign-in request was already used."),
    _l("This service provider is not registered with Unitgate."),
    _l("This service provider is no longer registered."),
    _l("This account cannot sign in at the moment. Please contact your administrator."),
    _l("This account cannot sign in."),
    _l("This sign-in method is disabled."),
    _l("The CSRF token is missing."),
    _l("The CSRF token is invalid."),
    _l("The CSRF token has expired."),
    _l("The CSRF session token is missing."),
    # pushed authorization requests at /authorize (idp.oidc.par, RFC 9126)
    _l("With request_uri send only client_id; everything else was pushed."),
    _l("client_id and request_uri may appear only once."),
    _l("request_uri must come from the pushed authorization request endpoint."),
    _l("The pushed request has expired or was already used."),
    _l("The pushed request belongs to another client."),
    _l("This client sends its authorization requests through /par only."),
)


def _page_detail(status: int, description: str) -> str:
    """The description as the page shows it: translated when the catalogue has it,
    as is on English pages, else nothing (no English on a German page). Werkzeug's
    generic descriptions are left out (the sentence says it better)."""
    generic = default_exceptions.get(status)
    if not description or (generic is not None and description == generic.description):
        return ""
    translated = gettext(description)
    if translated != description:
        return translated
    return description if current_language() == "en" else ""


def error_page(
    status: int, error: str, description: str, back: tuple[str, str] | None = None,
    texts: str | None = None,
) -> str:
    """The HTML error page in the page's language; ``back`` is (URL, link text) of a
    safe way back (a merchant's registered address), else the start page; ``texts``
    chooses the heading and sentence when the error code alone does not say enough."""
    heading, sentence = PAGE_TEXTS.get(texts or error) or _BY_STATUS_CLASS.get(
        status // 100, PAGE_TEXTS["server_error"]
    )
    if back is None:
        try:
            back_url = url_for("landing.home")
        except BuildError:  # an app without the start page (a test's bare app)
            back_url = "/"
        back_label, external = gettext("Go to the Unitgate start page"), False
    else:
        back_url, back_label, external = back[0], back[1], True
    return render_template(
        "error.html",
        status=status,
        error=error,
        heading=str(heading),
        sentence=str(sentence),
        detail=_page_detail(status, description),
        back_url=back_url,
        back_label=back_label,
        back_external=external,
        request_id=request_id(),
    )


def error_response(
    status: int, error: str, description: str, back: tuple[str, str] | None = None,
    texts: str | None = None,
) -> Response:
    """An error in the shape the client expects (problem details, OAuth-style JSON
    or an HTML page, :func:`error_page`, with ``back`` as its way back and ``texts``
    as its choice of :data:`PAGE_TEXTS`)."""
    if request.path.startswith(PROBLEM_PATH_PREFIX):
        return problem_response(status, error, description)
    if wants_json():
        resp = jsonify({"error": error, "error_description": description})
    else:
        resp = Response(
            error_page(status, error, description, back, texts), mimetype="text/html"
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
        texts = "form_expired" if isinstance(exc, CSRFError) else None
        return error_response(code, name, exc.description or exc.name or "", texts=texts)

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
