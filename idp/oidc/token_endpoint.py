"""Token (RFC 6749 §3.2), introspection (RFC 7662) and revocation (RFC 7009)
endpoints: thin views over the authorization server. Errors are RFC 6749 §5.2 JSON;
``invalid_client`` after HTTP Basic is a 401 with ``WWW-Authenticate``.

Before any parsing or authentication work a POST body is capped
(:func:`cap_form`): at most :data:`MAX_FORM_BYTES` bytes (413) and, like every form of
the app (:mod:`idp.web.form_limits`), at most ``MAX_FORM_PARAMS`` parameters (400), both
``invalid_request``. Then failed client authentication is throttled
(:mod:`idp.oidc.throttle`).
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from idp.errors import error_response
from idp.oidc import dpop, par, throttle
from idp.oidc.server import server

bp = Blueprint("oauth_token", __name__)

# A token request is a handful of short fields; a client assertion at most 8 KiB.
MAX_FORM_BYTES = 64 * 1024


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp


def _too_large() -> Response:
    return error_response(
        413, "invalid_request", f"The request body is larger than {MAX_FORM_BYTES} bytes."
    )


@bp.before_request
def cap_form() -> Response | None:
    """Refuse a POST body over :data:`MAX_FORM_BYTES` bytes (413) before it is parsed
    (the app-wide hook of :mod:`idp.web.form_limits` has already refused one with too many
    parameters). A body within the caps is parsed here once and read from the cache
    afterwards."""
    if request.method != "POST":
        return None
    if (request.content_length or 0) > MAX_FORM_BYTES:
        return _too_large()
    request.max_content_length = MAX_FORM_BYTES  # also bounds a body without a length
    try:
        request.form  # noqa: B018 - parse now, within the caps
    except RequestEntityTooLarge:
        return _too_large()
    return None


def _dpop_error(description: str, error: str = "invalid_dpop_proof") -> Response:
    resp = jsonify({"error": error, "error_description": description})
    resp.status_code = 400
    resp.headers["WWW-Authenticate"] = dpop.challenge(error)
    resp.headers.update(dpop.nonce_headers())
    return _no_store(resp)


def dpop_key(path: str) -> Response | None:
    """Check a ``DPoP`` header (RFC 9449 §5) for ``POST`` at ``path``: without one
    nothing happens; a valid proof leaves its key's thumbprint in ``g.dpop_jkt``
    (then the tokens issued are bound to it, :func:`idp.oidc.tokens.generate`); an
    invalid one, or two headers, is ``invalid_dpop_proof``."""
    proofs = request.headers.getlist("DPoP")
    if not proofs:
        return None
    if len(proofs) > 1:
        return _dpop_error("Send exactly one DPoP proof.")
    try:
        g.dpop_jkt = dpop.verify_proof(proofs[0], "POST", dpop.endpoint_url(path))
    except dpop.InvalidProof as exc:
        return _dpop_error(str(exc), dpop.error_code(exc))
    return None


@bp.post("/token")
def token() -> Response:
    refused = dpop_key("/token")
    if refused is not None:
        return refused
    resp = _no_store(throttle.guarded(server().create_token_response))
    if "dpop_jkt" in g:  # RFC 9449 §8.2: the nonce to use next (when required)
        resp.headers.update(dpop.nonce_headers())
    return resp


@bp.post("/par")
def pushed_authorization_request() -> Response:
    """RFC 9126 §2: push an authorization request, get a ``request_uri``."""
    refused = dpop_key("/par")
    if refused is not None:
        return refused
    resp = _no_store(throttle.guarded(par.push))
    if "dpop_jkt" in g:
        resp.headers.update(dpop.nonce_headers())
    return resp


@bp.post("/introspect")
def introspect() -> Response:
    return _no_store(throttle.guarded(lambda: server().create_endpoint_response("introspection")))


@bp.post("/revoke")
def revoke() -> Response:
    return _no_store(throttle.guarded(lambda: server().create_endpoint_response("revocation")))
