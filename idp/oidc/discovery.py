"""OpenID Connect Discovery 1.0 metadata (also served as RFC 8414 metadata) and the
JWKS. Every URL is built from the configured issuer, never from the request's Host."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from idp.crypto.keyring import SUPPORTED_ALGS
from idp.factors.acr import SUPPORTED as ACR_VALUES
from idp.oidc.authorize import KNOWN_PROMPTS
from idp.oidc.client_auth import ASSERTION_ALGS
from idp.oidc.dpop import DPOP_ALGS
from idp.oidc.grants import CONFIDENTIAL_AUTH_METHODS, USER_AUTH_METHODS
from idp.release.claims import SUPPORTED_CLAIMS, SUPPORTED_SCOPES
from idp.services import keyring, settings

bp = Blueprint("discovery", __name__)

TOKEN_CLAIMS = ("iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid")


def endpoint_url(path: str) -> str:
    """The public URL of one of our endpoints: the issuer plus ``path``."""
    return settings().issuer.rstrip("/") + path


def metadata() -> dict[str, Any]:
    """The provider metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2, RFC 9207 §3)."""
    return {
        "issuer": settings().issuer,
        "authorization_endpoint": endpoint_url("/authorize"),
        "token_endpoint": endpoint_url("/token"),
        "userinfo_endpoint": endpoint_url("/userinfo"),
        "jwks_uri": endpoint_url("/jwks"),
        "end_session_endpoint": endpoint_url("/logout"),
        "introspection_endpoint": endpoint_url("/introspect"),
        "revocation_endpoint": endpoint_url("/revoke"),
        "scopes_supported": list(SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(SUPPORTED_ALGS),
        "token_endpoint_auth_methods_supported": list(USER_AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "introspection_endpoint_auth_methods_supported": list(CONFIDENTIAL_AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(USER_AUTH_METHODS),
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [*TOKEN_CLAIMS, *SUPPORTED_CLAIMS],
        "prompt_values_supported": list(KNOWN_PROMPTS),
        "acr_values_supported": list(ACR_VALUES),
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "ui_locales_supported": ["de", "en"],
        # RFC 9126 §5 (pushed authorization requests) and RFC 9449 §5.1 (DPoP)
        "pushed_authorization_request_endpoint": endpoint_url("/par"),
        "require_pushed_authorization_requests": False,
        "dpop_signing_alg_values_supported": list(DPOP_ALGS),
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
    }


def _public_json(body: dict[str, Any]) -> Response:
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "public, max-age=60"
    return resp


@bp.get("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    return _public_json(metadata())


@bp.get("/.well-known/oauth-authorization-server")
def oauth_authorization_server() -> Response:
    return _public_json(metadata())


@bp.get("/jwks")
def jwks() -> Response:
    """Every active and still-published public key (RFC 7517 §5)."""
    return _public_json(keyring().jwks())
