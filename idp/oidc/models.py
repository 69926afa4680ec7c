"""authlib adapters: clients, authorization codes, refresh tokens and the principal.

authlib asks the server for objects implementing its mixins; these thin classes wrap
Unitgate's own records (a cached :class:`~idp.release.clients.ClientInfo`, a code's data from
the ephemeral store, a :class:`~idp.store.models.RefreshToken` row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from authlib.oidc.core import AuthorizationCodeMixin

from idp.release.clients import ClientInfo
from idp.store.models import RefreshToken

# Scopes that make no sense without an end-user (dropped from client_credentials).
USER_SCOPES = ("openid", "offline_access", "profile", "email", "phone", "wallet", "org",
               "purchases")


class OAuthClient(ClientMixin):
    """authlib's view of a registered client (RFC 6749 §2, RFC 7591 metadata)."""

    def __init__(self, info: ClientInfo) -> None:
        self.info = info
        self.client_id = info.client_id
        self.id_token_signed_response_alg = info.id_token_alg

    def get_client_id(self) -> str:
        return self.info.client_id

    def get_default_redirect_uri(self) -> None:
        """None: every authorization request must name its redirect URI (OIDC Core
        §3.1.2.1), which is then matched exactly."""
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        """The requested scopes this client may use, in request order; unknown or
        unallowed scopes are ignored (OIDC Core §3.1.2.1). No scope: all allowed ones."""
        if not scope:
            return " ".join(self.info.scopes)
        allowed = set(self.info.scopes)
        return " ".join(dict.fromkeys(s for s in scope.split() if s in allowed))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return self.info.redirect_uri_registered(redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.info.check_secret(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """A client authenticates with exactly its registered method everywhere."""
        return method == self.info.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.info.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.info.grant_types


@dataclass
class Principal:
    """The authenticated end-user behind a code or grant, as authlib's ``user``."""

    account_id: str
    auth_time: float
    amr: list[str] = field(default_factory=list)
    acr: str | None = None
    unit_id: str | None = None
    session_id_hash: str | None = None
    grant_id: str | None = None
    # An impersonation's tokens (``idp.interaction.impersonation``): its id and the
    # ``sub`` of the actor, for the RFC 8693 ``act`` claim (set once checked live).
    impersonation_id: str | None = None
    act_sub: str | None = None
    # Set where the session was read anyway (a silent sign-in): whether it acts for
    # someone is known (the impersonation's id, or None), so the code need not ask.
    session_acting: str | None = None
    session_acting_known: bool = False
    # The items the employee's consent leaves out (``idp.release.items``): from the
    # consent read at the authorization, then on the code and the grant.
    withheld: list[str] = field(default_factory=list)

    def get_user_id(self) -> str:
        return self.account_id


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    """A redeemed authorization code's data (OIDC Core §3.1.2.5, RFC 7636 §4.4)."""

    data: dict[str, Any]

    def get_redirect_uri(self) -> str:
        return str(self.data["redirect_uri"])

    def get_scope(self) -> str:
        return str(self.data["scope"])

    def get_nonce(self) -> str | None:
        return self.data.get("nonce")

    def get_auth_time(self) -> int:
        return int(self.data["auth_time"])

    def get_acr(self) -> str | None:
        return self.data.get("acr")

    def get_amr(self) -> list[str] | None:
        return list(self.data.get("amr") or []) or None

    @property
    def code_challenge(self) -> str | None:
        return self.data.get("code_challenge")

    @property
    def code_challenge_method(self) -> str | None:
        return self.data.get("code_challenge_method")

    def principal(self) -> Principal:
        d = self.data
        return Principal(
            account_id=d["account_id"],
            auth_time=float(d["auth_time"]),
            amr=list(d.get("amr") or []),
            acr=d.get("acr"),
            unit_id=d.get("unit_id"),
            session_id_hash=d.get("session_id_hash"),
            grant_id=d["grant_id"],
            impersonation_id=d.get("impersonation_id"),
            withheld=list(d.get("withheld") or []),
        )


class RefreshTokenRecord(TokenMixin):
    """A stored refresh token and its grant (the token family)."""

    def __init__(self, row: RefreshToken) -> None:
        self.row = row
        self.grant = row.grant

    def check_client(self, client: OAuthClient) -> bool:
        return self.grant.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.grant.scope

    def get_expires_in(self) -> int:
        from idp.store.models import utcnow

        return max(0, int((self.grant.expires_at - utcnow()).total_seconds()))

    def is_expired(self) -> bool:
        return self.get_expires_in() <= 0

    def is_revoked(self) -> bool:
        return self.grant.revoked_at is not None or self.row.used_at is not None

    def principal(self) -> Principal:
        g = self.grant
        return Principal(
            account_id=g.account_id,
            auth_time=g.auth_time.timestamp(),
            amr=list(g.amr or []),
            acr=g.acr,
            unit_id=g.unit_id,
            session_id_hash=g.session_id,
            grant_id=g.id,
            impersonation_id=g.impersonation_id,
            withheld=list(g.withheld or []),
        )
