"""Pushed Authorization Requests (RFC 9126).

``POST /par``: an authenticated client (the token endpoint's methods, RFC 9126 §2)
pushes the parameters of an authorization request. They are checked exactly as
/authorize checks them (:func:`idp.oidc.authorize.validated`), errors answered as
RFC 6749 §5.2 JSON (§2.3), and stored in the ephemeral store under a fresh
``request_uri`` (``urn:ietf:params:oauth:request_uri:`` + 256 random bits) for
:data:`LIFETIME` seconds. A ``DPoP`` proof at the push binds the code to its key
(RFC 9449 §10.1: the request's ``dpop_jkt``).

At /authorize (:func:`resolve`) the ``request_uri`` is accepted once, only with the
``client_id`` that pushed it and no other parameter (§4: the pushed request is the
whole request; nothing is mixed in from the browser's query).
"""

from __future__ import annotations

import hmac
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from authlib.oidc.core.errors import RequestNotSupportedError
from flask import Response, g, jsonify
from werkzeug.datastructures import MultiDict

from idp.crypto.primitives import random_token
from idp.oidc.grants import USER_AUTH_METHODS
from idp.oidc.server import server, wire_params
from idp.services import ephemeral, hasher

URN_PREFIX = "urn:ietf:params:oauth:request_uri:"
LIFETIME = 60
CLIENT_AUTH_FIELDS = ("client_secret", "client_assertion", "client_assertion_type")
PURPOSE = "par-request-uri"


def _key(request_uri: str) -> str:
    return "par:" + hasher().hash(request_uri, PURPOSE)


def _error(error: OAuth2Error) -> Response:
    """RFC 6749 §5.2 JSON (RFC 9126 §2.3), never a redirect: ``invalid_client``
    keeps its status and ``WWW-Authenticate``."""
    error.redirect_uri = None
    status, _, headers = error()
    resp = jsonify(dict(error.get_body()))
    resp.status_code = status
    for name, value in headers:
        if name.lower() == "www-authenticate":
            resp.headers[name] = value
    return resp


def push() -> Response:
    """Authenticate the client, check the request, store it: 201 with the
    ``request_uri`` and ``expires_in`` (RFC 9126 §2.2)."""
    srv = server()
    oauth_request = srv.create_oauth2_request(None)
    try:
        client = srv.authenticate_client(oauth_request, USER_AUTH_METHODS, "par")
    except OAuth2Error as error:
        return _error(error)
    from idp.oidc import authorize

    params = MultiDict(
        [(k, v) for k, v in wire_params().items(multi=True) if k not in CLIENT_AUTH_FIELDS]
    )
    client_id = client.get_client_id()
    try:
        if params.getlist("client_id") not in ([], [client_id]):
            raise InvalidRequestError("client_id names another client than the one authenticated.")
        params.setlist("client_id", [client_id])
        if "request_uri" in params:
            raise InvalidRequestError("A pushed request must not carry request_uri.")
        if "request" in params:
            raise RequestNotSupportedError()
        front = authorize.front(params)
        if isinstance(front, str):
            raise InvalidRequestError(front)
        bound = getattr(g, "dpop_jkt", None)
        if bound is not None:
            if params.get("dpop_jkt", bound) != bound:
                raise InvalidRequestError("dpop_jkt differs from the DPoP proof's key.")
            params.setlist("dpop_jkt", [bound])
        authorize.validated(params, front[0])
    except OAuth2Error as error:
        return _error(error)
    request_uri = URN_PREFIX + random_token(32)
    kept = {k: params[k] for k in authorize.KEPT_PARAMS if k in params}
    ephemeral().put(_key(request_uri), {"client_id": client_id, "params": kept}, LIFETIME)
    resp = jsonify({"request_uri": request_uri, "expires_in": LIFETIME})
    resp.status_code = 201
    return resp


def resolve(params: MultiDict[str, str]) -> MultiDict[str, str] | str:
    """The pushed request that ``request_uri`` names, taken (single use), or why it
    cannot be used (for an error page: the redirect URI is not known to be safe)."""
    if set(params) != {"client_id", "request_uri"}:
        return "With request_uri send only client_id; everything else was pushed."
    if len(params.getlist("client_id")) > 1 or len(params.getlist("request_uri")) > 1:
        return "client_id and request_uri may appear only once."
    request_uri, client_id = params["request_uri"], params["client_id"]
    if not request_uri.startswith(URN_PREFIX) or len(request_uri) > 200:
        return "request_uri must come from the pushed authorization request endpoint."
    key = _key(request_uri)
    stored: Any = ephemeral().get(key)
    if not isinstance(stored, dict):
        return "The pushed request has expired or was already used."
    if not hmac.compare_digest(str(stored.get("client_id")), client_id):
        return "The pushed request belongs to another client."
    if ephemeral().take(key) is None:
        return "The pushed request has expired or was already used."
    return MultiDict(list(dict(stored["params"]).items()))
