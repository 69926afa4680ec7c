"""Linking an upstream identity to an existing account, only with proof.

When an SSO sign-in arrives with a verified address that already belongs to an
account not linked to this upstream identity, nothing is linked silently (the
"nOAuth" class of takeovers): an e-mail code goes to the account's address and the
link is made only after that code is entered in the same browser.

The code is the login's own e-mail code (:mod:`idp.factors.email_otp`): 6 CSPRNG digits,
at most 10 minutes, single use, bound to this interaction and address, stored as a
keyed hash, limited tries, throttled sends, atomic redemption. The pending link
itself is kept for :data:`LINK_TTL` seconds under a random token and *taken*
atomically when the code is right, so one proof links at most once.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Response, render_template, request
from flask_babel import get_locale

from connectors import UpstreamIdentity
from idp.crypto.primitives import random_token
from idp.errors import error_response
from idp.federation import accounts
from idp.interaction import pending as interaction
from idp.services import ephemeral
from idp.store import connectors_repo
from idp.store import upstream_identities_repo as repo
from idp.store.models import Account, Connector

LINK_TTL = 600


def _key(token: str) -> str:
    return f"fed:link:{token}"


def mask(email: str) -> str:
    """``a•••@acme.example``: enough to recognise the address, not to harvest it."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}\u2022\u2022\u2022@{domain}"


def begin(ix: interaction.Interaction, row: Connector, identity: UpstreamIdentity,
          account: Account) -> Response:
    """Send a code to ``account``'s address and show the page asking for it."""
    from idp.factors import email_otp
    from idp.factors.email_otp import SendOutcome

    if account.email is None:  # found by its address, so never; but no code without one
        return error_response(400, "invalid_request", "The account has no e-mail address.")
    sent = email_otp.send_code(ix, account.email, request.remote_addr or "", str(get_locale()))
    if sent is SendOutcome.THROTTLED:
        return error_response(429, "slow_down", "Too many codes were requested; please wait "
                              "a few minutes and sign in again.")
    token = random_token(24)
    ephemeral().put(
        _key(token),
        {"ix": ix.id, "connector": row.id, "account": account.id,
         "identity": asdict(identity)},
        LINK_TTL,
    )
    return _page(token, row, account.email, status=200)


def _page(token: str, row: Connector, email: str | None, status: int, error: str | None = None
          ) -> Response:
    resp = Response(
        render_template("federation/link_code.html", token=token, connector=row,
                        masked=mask(email or ""), error=error),
        mimetype="text/html",
    )
    resp.status_code = status
    return resp


def submit(token: str) -> Response:
    """Check the entered code; on success link the identity and finish the sign-in."""
    from idp.factors import email_otp
    from idp.factors.email_otp import RedeemOutcome

    expired = error_response(400, "invalid_request", "Unknown or expired linking request.")
    if not token or len(token) > 64:
        return expired
    data: dict[str, Any] | None = ephemeral().get(_key(token))
    ix = interaction.load(data["ix"]) if data else None
    row = connectors_repo.get(data["connector"]) if data else None
    account = repo.account(data["account"]) if data else None
    if data is None or ix is None or row is None or account is None:
        return expired
    redemption = email_otp.redeem_code(ix, request.form.get("code", "")[:20])
    if redemption.outcome is RedeemOutcome.WRONG:
        return _page(token, row, account.email, status=400, error="wrong_code")
    if (redemption.outcome is not RedeemOutcome.OK or redemption.account is None
            or redemption.account.id != account.id):
        ephemeral().delete(_key(token))
        return expired
    if ephemeral().take(_key(token)) is None:  # a parallel submission won
        return expired
    identity = UpstreamIdentity(**data["identity"])
    try:
        linked = accounts.link(row, identity, account.id)
    except repo.IdentityConflict:
        return error_response(409, "conflict", "This company login is linked to another account.")
    from idp.federation.flow import finish

    return finish(ix, linked, identity)
