"""OpenID Provider on authlib: discovery, JWKS, authorize, token, userinfo,
introspection, revocation and RP-initiated logout."""

from __future__ import annotations

from authlib.common.security import is_secure_transport
from flask import Flask
from flask_wtf.csrf import CSRFProtect

from idp.services import settings


def setup_oidc(app: Flask, csrf: CSRFProtect) -> None:
    """Build this app's authorization server and register the protocol endpoints.

    The token, introspection, revocation and userinfo endpoints authenticate with
    client credentials or bearer tokens, and relying parties may POST authorization
    and logout requests from their own pages, so these are exempt from the form CSRF
    check (logout checks its own confirmation form). Refuses an issuer that is neither
    https nor loopback http (RFC 6749 §3.1, RFC 8252 §7.3).
    """
    from idp.oidc import authorize, cors, discovery, logout, token_endpoint, userinfo
    from idp.oidc.server import build_server

    with app.app_context():
        issuer = settings().issuer
    if not is_secure_transport(issuer + "/"):
        raise RuntimeError(
            f"IDP_ISSUER={issuer!r} must be an https URL (plain http only on a loopback host)"
        )
    build_server(app)
    for blueprint in (
        discovery.bp,
        authorize.bp,
        token_endpoint.bp,
        userinfo.bp,
        logout.bp,
    ):
        app.register_blueprint(blueprint)
    for exempt in (authorize.bp, token_endpoint.bp, userinfo.bp, logout.bp):
        csrf.exempt(exempt)
    app.after_request(cors.add_cors_headers)
