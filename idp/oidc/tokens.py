"""Issuing tokens: JWT access tokens (RFC 9068), opaque refresh tokens, ID tokens.

* Access tokens are signed with the active ES256 key, header ``typ: at+jwt``; claims
  ``iss sub aud client_id exp iat jti scope`` and, for end-user tokens, ``auth_time``,
  ``acr``, ``amr`` and the private claim ``gid`` (the grant, for revocation checks).
  Client-credentials tokens have ``sub`` = ``client_id`` and no ``gid``.
* With a DPoP proof at the token endpoint (RFC 9449) the access token carries
  ``cnf.jkt`` and the response says ``token_type: DPoP``.
* Refresh tokens are 256 random bits; the database keeps only their keyed hash.
* ID tokens (OIDC Core §2, §3.1.3.6) are signed with the client's
  ``id_token_signed_response_alg`` (ES256 default, RS256).
"""

from __future__ import annotations

import time
from typing import Any

from authlib.oidc.core.util import create_half_hash
from flask import g, has_request_context

from idp.crypto.primitives import random_token
from idp.interaction import rp_logout
from idp.oidc.models import AuthorizationCode, OAuthClient, Principal
from idp.release import claims_request
from idp.release.claims import released_claims
from idp.services import hasher, keyring, settings
from idp.store import claims_repo, grants_repo
from idp.store.models import Impersonation

REFRESH_PURPOSE = "refresh-token"
ACCESS_TOKEN_ALG = "ES256"


def refresh_hash(token: str) -> str:
    """The keyed hash under which a refresh token is stored."""
    return hasher().hash(token, REFRESH_PURPOSE)


def session_sid(session_id_hash: str | None) -> str | None:
    """The ``sid`` claim for a session: derived from, but not equal to, its storage key."""
    if not session_id_hash:
        return None
    return rp_logout.sid(session_id_hash)


def actor_sub(row: Impersonation) -> str:
    """The actor's ``sub`` for the RFC 8693 ``act`` claim: the same ``sub`` every
    client sees for that account (Unitgate's OIDC subjects are the account id, the
    same at every client; no pairwise subjects)."""
    return row.actor_account_id


def generate(
    grant_type: str,
    client: OAuthClient,
    user: Principal | None = None,
    scope: str | None = None,
    expires_in: int | None = None,
    include_refresh_token: bool = True,
) -> dict[str, Any]:
    """authlib's token generator: the token response body of RFC 6749 §5.1."""
    s = settings()
    now = int(time.time())
    lifetime = expires_in or s.access_token_seconds
    scope = scope or ""
    claims: dict[str, Any] = {
        "iss": s.issuer,
        "sub": client.get_client_id(),
        "aud": client.get_client_id(),
        "client_id": client.get_client_id(),
        "iat": now,
        "exp": now + lifetime,
        "jti": random_token(16),
        "scope": scope,
    }
    if user is not None:
        claims["sub"] = user.account_id
        claims["auth_time"] = int(user.auth_time)
        if user.acr:
            claims["acr"] = user.acr
        if user.amr:
            claims["amr"] = list(user.amr)
        if user.grant_id:
            claims["gid"] = user.grant_id
        if user.act_sub:
            claims["act"] = {"sub": user.act_sub}
    jkt = dpop_jkt()
    if jkt is not None:  # RFC 9449 §6.1: bound to the proof's key
        claims["cnf"] = {"jkt": jkt}
    token: dict[str, Any] = {
        "token_type": "DPoP" if jkt is not None else "Bearer",
        "access_token": keyring().sign_jwt(claims, ACCESS_TOKEN_ALG, typ="at+jwt"),
        "expires_in": lifetime,
        "scope": scope,
    }
    if include_refresh_token and user is not None:
        token["refresh_token"] = random_token(32)
    return token


def dpop_jkt() -> str | None:
    """The thumbprint of the key whose DPoP proof this token request carried
    (checked by :func:`idp.oidc.token_endpoint.dpop_key`), or None."""
    return getattr(g, "dpop_jkt", None) if has_request_context() else None


def _claims_request(code: AuthorizationCode | None, user: Principal) -> dict[str, Any] | None:
    """The ``claims`` request of the authorization: from the code at the exchange,
    from the grant on a refresh (OIDC Core §12.2: the same claims)."""
    if code is not None:
        return code.data.get("claims_request")
    if user.grant_id is None:
        return None
    grant = grants_repo.get(user.grant_id)
    return grant.claims_request if grant is not None else None


def id_token(
    client: OAuthClient,
    user: Principal,
    code: AuthorizationCode | None,
    access_token: str | None,
    scope: str,
) -> str:
    """A signed ID token for ``user`` at ``client`` with the claims ``scope`` releases."""
    s = settings()
    alg = client.info.id_token_alg
    now = int(time.time())
    account = claims_repo.account(user.account_id)
    claims: dict[str, Any] = {}
    if account is not None:
        claims.update(released_claims(account, scope.split(), user.unit_id, user.withheld))
        asked = _claims_request(code, user)
        if asked:
            released = claims_request.release(
                asked, "id_token", account, user.unit_id, user.withheld
            )
            claims.update({k: v for k, v in released.items() if k not in claims})
    claims.update(
        {
            "iss": s.issuer,
            "sub": user.account_id,
            "aud": client.get_client_id(),
            "azp": client.get_client_id(),
            "iat": now,
            "exp": now + s.access_token_seconds,
            "auth_time": int(user.auth_time),
        }
    )
    nonce = code.get_nonce() if code is not None else None
    if nonce:
        claims["nonce"] = nonce
    if user.acr:
        claims["acr"] = user.acr
    if user.amr:
        claims["amr"] = list(user.amr)
    sid = session_sid(user.session_id_hash)
    if sid:
        claims["sid"] = sid
    if user.act_sub:
        claims["act"] = {"sub": user.act_sub}
    if access_token:
        claims["at_hash"] = create_half_hash(access_token, alg).decode("ascii")
    return keyring().sign_jwt(claims, alg)
