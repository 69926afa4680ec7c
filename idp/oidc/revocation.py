"""Token revocation (RFC 7009).

Revoking a refresh token revokes its whole family (the grant: every refresh and
access token of it, §2.1 "SHOULD also invalidate all access tokens based on the same
authorization grant"); revoking an access token puts its ``jti`` on the deny-list
until it expires. Unknown or already invalid tokens answer 200 as well (§2.2).
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint

from idp.oidc import liveness
from idp.oidc.grants import USER_AUTH_METHODS
from idp.oidc.models import OAuthClient
from idp.oidc.token_lookup import AccessTokenRecord, RefreshRecord, find_token
from idp.store import grants_repo
from idp.store.unit_of_work import atomic


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = USER_AUTH_METHODS

    def check_params(self, request: Any, client: OAuthClient) -> None:
        """Unknown hints are ignored (§2.1: the server extends its search)."""
        if not request.form.get("token"):
            raise InvalidRequestError("Missing 'token' parameter.")

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return find_token(token_string, token_type_hint)

    def revoke_token(self, token: AccessTokenRecord | RefreshRecord, request: Any) -> None:
        if isinstance(token, RefreshRecord):
            with atomic():
                grants_repo.revoke(token.grant.id)
        else:
            liveness.deny(token.token)
