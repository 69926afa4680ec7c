"""Token (RFC 6749 §3.2), introspection (RFC 7662) and revocation (RFC 7009)
endpoints: thin views over the authorization server. Errors are RFC 6749 §5.2 JSON;
``invalid_client`` after HTTP Basic is a 401 with ``WWW-Authenticate``."""

from __future__ import annotations

from flask import Blueprint, Response

from idp.oidc.server import server

bp = Blueprint("oauth_token", __name__)


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp


@bp.post("/token")
def token() -> Response:
    return _no_store(server().create_token_response())


@bp.post("/introspect")
def introspect() -> Response:
    return _no_store(server().create_endpoint_response("introspection"))


@bp.post("/revoke")
def revoke() -> Response:
    return _no_store(server().create_endpoint_response("revocation"))
