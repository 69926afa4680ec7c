"""authlib grants: authorization code (+PKCE, +ID token), refresh token, client
credentials. No implicit, no hybrid, no password grant (RFC 9700 §2.1.2, §2.4).

Refresh tokens are issued exactly when the client is registered with the
``refresh_token`` grant type; ``offline_access`` is an ordinary scope that does not
change this. Each refresh rotates the token; presenting a used one revokes the family.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge

from idp import audit
from idp.interaction import impersonation, rp_logout
from idp.oidc import codes, tokens
from idp.oidc.models import AuthorizationCode, OAuthClient, Principal, RefreshTokenRecord
from idp.release import claims_request, signins
from idp.release.claims import claims_for_scopes
from idp.services import settings
from idp.store import claims_repo, grants_repo
from idp.store.models import Grant, new_id, utcnow
from idp.store.unit_of_work import atomic

log = logging.getLogger(__name__)

USER_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
MAX_REFRESH_TOKEN_LENGTH = 256


def _claims_request(text: Any, client: OAuthClient) -> dict[str, Any] | None:
    """The authorization's ``claims`` parameter, already validated at /authorize, as
    far as the client may receive it; None without one."""
    try:
        kept = claims_request.allowed(claims_request.parse(text), client.info.scopes)
    except claims_request.InvalidClaims:
        return None
    return kept or None


def _active_principal(principal: Principal) -> Principal | None:
    """``principal`` when its account may still sign in and, for an impersonation's
    code or grant, the impersonation is still live (then with ``act_sub`` set): a
    code or refresh token of an ended impersonation is ``invalid_grant``."""
    account = claims_repo.account(principal.account_id)
    if account is None or not account.can_sign_in:
        return None
    if principal.impersonation_id is not None:
        row = impersonation.live(principal.impersonation_id)
        if row is None:
            return None
        principal.act_sub = tokens.actor_sub(row)
    return principal


class S256CodeChallenge(CodeChallenge):
    """PKCE (RFC 7636) with S256 only: required for public clients, ``plain`` and a
    missing method (which means plain, §4.3) refused; a verifier without a challenge
    refused at the token endpoint (downgrade, RFC 9700 §4.8.2)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        client: OAuthClient = grant.request.client
        if not challenge and client.info.is_public:
            raise InvalidRequestError("PKCE is required: send code_challenge with method S256.")
        if challenge and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        super().validate_code_challenge(grant, redirect_uri)


class IDTokenIssuer:
    """Adds the ID token to token responses with the ``openid`` scope: the code
    exchange (OIDC Core §3.1.3.3) and the refresh (§12.2), where it names the same
    ``sub``, ``auth_time``, ``acr``, ``amr`` and ``sid`` as the original
    authentication and carries no ``nonce``."""

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_create_token_response", self.add_id_token)

    def add_id_token(self, grant: Any, response: tuple[int, dict[str, Any], Any]) -> None:
        _, token, _ = response
        if "openid" not in token.get("scope", "").split():
            return
        request = grant.request
        token["id_token"] = tokens.id_token(
            request.client,
            request.user,
            getattr(request, "authorization_code", None),  # None on a refresh
            token.get("access_token"),
            token["scope"],
        )


def _impersonation_id(user: Principal) -> str | None:
    """The impersonation whose acting session asks for this code (live or not: the
    code must name it, and :func:`_active_principal` refuses it when ended)."""
    if user.session_acting_known:  # read with the session already (a silent sign-in)
        return user.session_acting
    row = impersonation.act_for_session(user.session_id_hash)
    return row.id if row is not None else None


def _audit_act(user: Principal, client_id: str, grant_type: str) -> None:
    """Stage the audit event of tokens issued during an impersonation."""
    row = impersonation.live(user.impersonation_id) if user.impersonation_id else None
    if row is None:
        return
    audit.record(
        impersonation.audit_actor(row), "impersonation.tokens_issued",
        f"account:{row.target_account_id}",
        {"impersonation_id": row.id, "client_id": client_id, "grant_type": grant_type,
         "grant_id": user.grant_id, "act": {"sub": user.act_sub}},
        unit_id=row.unit_id,
    )


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    """RFC 6749 §4.1 with codes from :mod:`idp.oidc.codes`."""

    TOKEN_ENDPOINT_AUTH_METHODS = USER_AUTH_METHODS

    def save_authorization_code(self, code: str, request: Any) -> None:
        """Store the code's bindings and record the sign-in at the merchant."""
        user: Principal = request.user
        data = request.payload.data
        scope = request.scope or ""
        client_id = request.client.get_client_id()
        codes.store(
            code,
            {
                "client_id": client_id,
                "redirect_uri": request.payload.redirect_uri,
                "scope": scope,
                "nonce": data.get("nonce"),
                "code_challenge": data.get("code_challenge"),
                "code_challenge_method": data.get("code_challenge_method"),
                "account_id": user.account_id,
                "auth_time": user.auth_time,
                "amr": list(user.amr),
                "acr": user.acr,
                "unit_id": user.unit_id,
                "session_id_hash": user.session_id_hash,
                "grant_id": new_id(),
                "claims_request": _claims_request(data.get("claims"), request.client),
                "impersonation_id": _impersonation_id(user),
                "dpop_jkt": data.get("dpop_jkt"),
                "withheld": list(user.withheld),
            },
        )
        released = claims_for_scopes(scope.split())
        merchant_id = request.client.info.merchant_id  # from the cached client: no query
        signins.record(user.account_id, merchant_id, user.unit_id, "oidc", released)
        # the client takes part in the session: its logout reaches the client
        rp_logout.remember(user.session_id_hash, client_id, user.account_id)

    def query_authorization_code(self, code: str, client: OAuthClient) -> AuthorizationCode | None:
        data = codes.redeem(code)
        if data is None or data.get("client_id") != client.get_client_id():
            return None
        if data.get("dpop_jkt") and data["dpop_jkt"] != tokens.dpop_jkt():
            return None  # RFC 9449 §10: the code is bound to the key named at /authorize
        return AuthorizationCode(data)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing to do: :func:`idp.oidc.codes.redeem` took the code atomically."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Principal | None:
        return _active_principal(authorization_code.principal())


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """RFC 6749 §6 with rotation and reuse detection (RFC 9700 §4.14.2)."""

    TOKEN_ENDPOINT_AUTH_METHODS = USER_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def _validate_request_token(self, client: OAuthClient) -> RefreshTokenRecord:
        value = self.request.form.get("refresh_token")
        if not value:
            raise InvalidRequestError("Missing 'refresh_token' in request.")
        record = self.authenticate_refresh_token(value)
        if record is None or not record.check_client(client):
            raise InvalidGrantError("Invalid refresh token.")
        if record.grant.revoked_at is not None or record.is_expired():
            raise InvalidGrantError("The refresh token was revoked or has expired.")
        if record.grant.dpop_jkt and record.grant.dpop_jkt != tokens.dpop_jkt():
            # RFC 9449 §5: a public client's refresh token is bound to its DPoP key
            raise InvalidGrantError("The refresh token is bound to another DPoP key.")
        self._validate_token_scope(record)  # before claiming: a bad scope burns nothing
        if not grants_repo.claim_refresh(record.row.id):
            with atomic():
                grants_repo.revoke(record.grant.id)
            log.warning("refresh token reuse: grant %s revoked", record.grant.id)
            raise InvalidGrantError("Refresh token reuse: every token of this grant is revoked.")
        return record

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshTokenRecord | None:
        if not isinstance(refresh_token, str) or len(refresh_token) > MAX_REFRESH_TOKEN_LENGTH:
            return None
        row = grants_repo.refresh_token(tokens.refresh_hash(refresh_token))
        return None if row is None else RefreshTokenRecord(row)

    def authenticate_user(self, refresh_token: RefreshTokenRecord) -> Principal | None:
        return _active_principal(refresh_token.principal())

    def issue_token(self, user: Principal, refresh_token: RefreshTokenRecord) -> dict[str, Any]:
        """New tokens for the (possibly narrowed) scope; access tokens never outlive
        the family's absolute lifetime."""
        scope = self.request.payload.scope or refresh_token.get_scope()
        lifetime = min(settings().access_token_seconds, refresh_token.get_expires_in())
        return self.generate_token(
            user=user, scope=scope, expires_in=max(1, lifetime), include_refresh_token=True
        )

    def revoke_old_credential(self, refresh_token: RefreshTokenRecord) -> None:
        """Nothing to do: the old token was marked used atomically at validation."""


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """RFC 6749 §4.4 for confidential clients: scope from the client's allowed scopes
    (``openid`` and ``offline_access`` dropped), ``sub`` = client id, no ID token, no
    refresh token, no database write."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def create_token_response(self) -> tuple[int, dict[str, Any], Any]:
        client: OAuthClient = self.request.client
        allowed = [s for s in client.info.scopes if s not in ("openid", "offline_access")]
        requested = (self.request.payload.scope or "").split()
        scope = [s for s in dict.fromkeys(requested) if s in allowed] if requested else allowed
        token = tokens.generate(self.GRANT_TYPE, client, None, " ".join(scope), None, False)
        return 200, token, self.TOKEN_RESPONSE_HEADER


def _code_claims(request: Any) -> dict[str, Any] | None:
    code = getattr(request, "authorization_code", None)
    return code.data.get("claims_request") if isinstance(code, AuthorizationCode) else None


def save_token(token: dict[str, Any], request: Any) -> None:
    """authlib's ``save_token``: a code exchange writes its grant (and first refresh
    token); a refresh writes the rotated refresh token; client credentials write
    nothing."""
    grant_type = request.payload.grant_type
    user: Principal | None = request.user
    if user is None or user.grant_id is None:
        return
    refresh = token.get("refresh_token")
    if grant_type == "authorization_code":
        now = utcnow()
        grant = Grant(
            id=user.grant_id,
            account_id=user.account_id,
            client_id=request.client.get_client_id(),
            merchant_id=request.client.info.merchant_id,
            unit_id=user.unit_id,
            scope=token.get("scope", ""),
            session_id=user.session_id_hash,
            auth_time=datetime.fromtimestamp(user.auth_time, UTC),
            acr=user.acr,
            amr=list(user.amr),
            claims_request=_code_claims(request),
            withheld=list(user.withheld),
            impersonation_id=user.impersonation_id,
            dpop_jkt=tokens.dpop_jkt() if request.client.info.is_public else None,
            created_at=now,
            expires_at=now + timedelta(days=settings().refresh_token_days),
        )
        with atomic():
            grants_repo.create(grant, tokens.refresh_hash(refresh) if refresh else None)
            _audit_act(user, grant.client_id, grant_type)
        if codes.replayed(grant.id):
            with atomic():
                grants_repo.revoke(grant.id)
    elif grant_type == "refresh_token" and refresh:
        with atomic():
            grants_repo.add_refresh(user.grant_id, tokens.refresh_hash(refresh))
            _audit_act(user, request.client.get_client_id(), grant_type)
