"""Finding a presented token for introspection (RFC 7662) and revocation (RFC 7009).

Access tokens are JWTs we signed; refresh tokens are opaque and found by keyed hash.
``token_type_hint`` only changes the order of the search (RFC 7662 §2.1).
"""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc6749 import TokenMixin

from idp.interaction import impersonation
from idp.oidc import liveness, tokens
from idp.oidc.models import OAuthClient, RefreshTokenRecord
from idp.oidc.verification import MAX_TOKEN_BYTES, AccessToken, verify_access_token
from idp.store import claims_repo, grants_repo


class AccessTokenRecord(TokenMixin):
    """A verified access token seen through authlib's ``TokenMixin``."""

    kind = "access_token"

    def __init__(self, token: AccessToken) -> None:
        self.token = token

    def check_client(self, client: OAuthClient) -> bool:
        return self.token.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return " ".join(self.token.scopes)

    def get_expires_in(self) -> int:
        return max(0, self.token.exp - int(time.time()))

    def is_expired(self) -> bool:
        return self.token.exp <= time.time()

    def is_revoked(self) -> bool:
        return liveness.access_token_active(self.token) is None


class RefreshRecord(RefreshTokenRecord):
    """A stored refresh token; revoked also when its account may no longer sign in."""

    kind = "refresh_token"

    def is_revoked(self) -> bool:
        if super().is_revoked():
            return True
        account = claims_repo.account(self.grant.account_id)
        if account is None or not account.can_sign_in:
            return True
        ended = impersonation.live(self.grant.impersonation_id) is None
        return self.grant.impersonation_id is not None and ended


def _access(value: str) -> AccessTokenRecord | None:
    token = verify_access_token(value)
    return None if token is None else AccessTokenRecord(token)


def _refresh(value: str) -> RefreshRecord | None:
    if "." in value or len(value) > 256:
        return None
    row = grants_repo.refresh_token(tokens.refresh_hash(value))
    return None if row is None else RefreshRecord(row)


def find_token(value: Any, hint: str | None) -> AccessTokenRecord | RefreshRecord | None:
    """The access or refresh token ``value`` denotes, or None."""
    if not isinstance(value, str) or not value or len(value) > MAX_TOKEN_BYTES:
        return None
    order = (_refresh, _access) if hint == "refresh_token" else (_access, _refresh)
    for finder in order:
        found = finder(value)
        if found is not None:
            return found
    return None
