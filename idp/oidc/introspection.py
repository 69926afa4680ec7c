"""Token introspection (RFC 7662) for authenticated confidential clients.

A client learns about its own tokens only: a token issued to another client, or one
that is expired, revoked, rotated, of a blocked account or of a revoked grant, is
reported as ``{"active": false}`` (§2.2) and nothing else.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from idp.interaction import impersonation
from idp.oidc import tokens
from idp.oidc.grants import CONFIDENTIAL_AUTH_METHODS
from idp.oidc.models import OAuthClient
from idp.oidc.token_lookup import AccessTokenRecord, RefreshRecord, find_token
from idp.services import settings


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def check_params(self, request: Any, client: OAuthClient) -> None:
        """Unknown hints are ignored rather than refused (§2.1: the server extends its
        search), so the only error is a missing token."""
        if not request.form.get("token"):
            from authlib.oauth2.rfc6749 import InvalidRequestError

            raise InvalidRequestError("Missing 'token' parameter.")

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return find_token(token_string, token_type_hint)

    def check_permission(self, token: Any, client: OAuthClient, request: Any) -> bool:
        return bool(token.check_client(client))

    def introspect_token(self, token: AccessTokenRecord | RefreshRecord) -> dict[str, Any]:
        if isinstance(token, AccessTokenRecord):
            c = token.token.claims
            out = {
                "active": True,
                "token_type": "Bearer",
                "scope": token.get_scope(),
                "client_id": c["client_id"],
                "sub": c["sub"],
                "aud": c.get("aud"),
                "iss": c["iss"],
                "exp": c["exp"],
                "iat": c["iat"],
                "jti": c["jti"],
            }
            for name in ("auth_time", "acr", "amr", "act", "cnf"):
                if name in c:
                    out[name] = c[name]
            if token.token.jkt is not None:  # RFC 9449 §6.2
                out["token_type"] = "DPoP"
            return out
        grant = token.grant
        out = {
            "active": True,
            "token_type": "refresh_token",
            "scope": grant.scope,
            "client_id": grant.client_id,
            "sub": grant.account_id,
            "iss": settings().issuer,
            "exp": int(grant.expires_at.timestamp()),
            "iat": int(token.row.created_at.timestamp()),
        }
        # an impersonation's refresh token names the actor like its access tokens
        # (RFC 8693 §4.1); an ended one is inactive already (RefreshRecord.is_revoked)
        row = impersonation.live(grant.impersonation_id) if grant.impersonation_id else None
        if row is not None:
            out["act"] = {"sub": tokens.actor_sub(row)}
        return out
