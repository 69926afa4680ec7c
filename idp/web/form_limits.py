"""Bounded cost of form bodies, for every endpoint (SECURITY.md: "every request's cost
is bounded").

Werkzeug parses an ``application/x-www-form-urlencoded`` body into a multidict whose
cost grows with the number of parameters; a 1 MiB body (the app-wide
``MAX_CONTENT_LENGTH``) of 100,000 tiny parameters costs most of a second of CPU. No
form of Unitgate has more than a few dozen fields, so a request with more than
:data:`MAX_FORM_PARAMS` parameters is refused (400 ``invalid_request``, in the shape
the client expects) before anything parses it, CSRF protection included: the check
counts ``&`` in the raw body, linear in its size. Multipart bodies are held to the
same number of parts by Flask's ``MAX_FORM_PARTS``.
"""

from __future__ import annotations

from flask import Flask, Response, request

from idp.errors import error_response

MAX_FORM_PARAMS = 100
URLENCODED = "application/x-www-form-urlencoded"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def too_many_params() -> bool:
    """Whether this request's urlencoded body has more than :data:`MAX_FORM_PARAMS`
    parameters (reads the body once and keeps it for the parser)."""
    if request.method not in BODY_METHODS or request.mimetype != URLENCODED:
        return False
    return request.get_data(cache=True).count(b"&") >= MAX_FORM_PARAMS


def refuse_large_forms() -> Response | None:
    """A ``before_request`` hook: 400 for a form with too many parameters."""
    if too_many_params():
        return error_response(
            400, "invalid_request", f"More than {MAX_FORM_PARAMS} form parameters."
        )
    return None


def init_app(app: Flask) -> None:
    """Cap every form body; call before anything that parses forms (CSRF) is set up."""
    app.config["MAX_FORM_PARTS"] = MAX_FORM_PARAMS
    app.before_request(refuse_large_forms)
