"""CORS for the endpoints browser-based clients call directly: discovery, JWKS, token
and userinfo. Never on the authorization endpoint or any HTML page: those are
navigations, not cross-origin reads."""

from __future__ import annotations

from flask import Response, request

CORS_PATHS = frozenset(
    {
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/jwks",
        "/token",
        "/userinfo",
    }
)


def add_cors_headers(response: Response) -> Response:
    """After-request hook: allow any origin on :data:`CORS_PATHS` (no cookies are
    involved: these endpoints authenticate with tokens and client credentials)."""
    if request.path not in CORS_PATHS:
        return response
    response.headers["Access-Control-Allow-Origin"] = "*"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, DPoP"
        response.headers["Access-Control-Max-Age"] = "600"
    else:
        response.headers["Access-Control-Expose-Headers"] = "WWW-Authenticate, DPoP-Nonce"
    return response
