"""Is a token still good? Revocation state of access and refresh tokens.

An access token is a self-contained JWT, so revocation is looked up at the endpoints
that accept it (userinfo, introspection): its ``jti`` must not be on the deny-list
(RFC 7009 revocation), its grant must be live (not revoked by logout, code replay,
refresh-token reuse or blocking, and within its absolute lifetime), and its account
must still be allowed to sign in; a grant issued during an impersonation must belong
to a live impersonation (ended or timed out: every token dies). Client-credentials
tokens have no grant; they die with their client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from idp.interaction import impersonation
from idp.oidc.verification import CLOCK_SKEW, AccessToken
from idp.release import clients
from idp.services import ephemeral
from idp.store import grants_repo
from idp.store.models import Account, Grant


@dataclass(frozen=True)
class LiveAccessToken:
    """A verified, unrevoked access token with its grant and account (None for
    client-credentials tokens)."""

    token: AccessToken
    grant: Grant | None
    account: Account | None
    # The impersonator's ``sub`` when the grant was issued during an impersonation.
    act_sub: str | None = None


def _deny_key(jti: str) -> str:
    return f"at-denied:{jti}"


def deny(token: AccessToken) -> None:
    """Put an access token on the deny-list until it expires (RFC 7009 §2)."""
    ttl = int(token.exp - time.time()) + CLOCK_SKEW
    if ttl > 0:
        ephemeral().put(_deny_key(token.jti), 1, ttl)


def access_token_active(token: AccessToken) -> LiveAccessToken | None:
    """The live view of ``token``, or None when it was revoked in any way."""
    if ephemeral().get(_deny_key(token.jti)) is not None:
        return None
    if clients.lookup(token.client_id) is None:
        return None
    if token.grant_id is None:
        if token.sub != token.client_id:
            return None
        return LiveAccessToken(token, None, None)
    found = grants_repo.live_with_account(token.grant_id)
    if found is None:
        return None
    grant, account = found
    if grant.account_id != token.sub or grant.client_id != token.client_id:
        return None
    if not account.can_sign_in:
        return None
    act_sub = None
    if grant.impersonation_id is not None:  # dies with the impersonation
        row = impersonation.live(grant.impersonation_id)
        if row is None:
            return None
        act_sub = row.actor_account_id
    return LiveAccessToken(token, grant, account, act_sub)
