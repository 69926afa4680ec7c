"""Linking an upstream identity to an existing account, only with proof.

When an SSO sign-in arrives with a verified address that already belongs to an
account not linked to this upstream identity, nothing is linked silently (the
"nOAuth" class of takeovers): a one-time code goes to the account's address and the
link is made only after the code is entered in the same browser.

The code follows the e-mail code rules of ``SECURITY.md``: 6 digits from a CSPRNG
(about 20 bits), valid :data:`CODE_TTL` seconds, single use, bound to this linking
transaction and browser, stored only as a keyed hash, at most :data:`MAX_TRIES`
wrong entries, and redeemed atomically (``take``), so two parallel submissions
cannot both link.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict
from typing import Any

from flask import Response, render_template, request

from connectors import UpstreamIdentity
from idp import interaction
from idp.crypto import random_token
from idp.errors import error_response
from idp.federation import accounts
from idp.services import ephemeral, hasher
from idp.store import connectors_repo
from idp.store import upstream_identities_repo as repo
from idp.store.models import Account, Connector

CODE_TTL = 600
MAX_TRIES = 5
PURPOSE = "federation-link"


def _key(token: str) -> str:
    return f"fed:link:{token}"


def mask(email: str) -> str:
    """``a•••@acme.example``: enough to recognise the address, not to harvest it."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}\u2022\u2022\u2022@{domain}"


def begin(ix: interaction.Interaction, row: Connector, identity: UpstreamIdentity,
          account: Account) -> Response:
    """Send a code to ``account``'s address and show the page asking for it."""
    token = random_token(24)
    code = f"{secrets.randbelow(10**6):06d}"
    ephemeral().put(
        _key(token),
        {
            "ix": ix.id,
            "connector": row.id,
            "account": account.id,
            "identity": asdict(identity),
            "code_hash": hasher().hash(f"{token}:{code}", PURPOSE),
        },
        CODE_TTL,
    )
    repo.queue_email(
        account.email,
        "Confirm linking your company sign-in",
        f"Your code to link {row.name} to your Unitgate account: {code}\n\n"
        "It is valid for 10 minutes. If you did not just sign in with your company's "
        "login, ignore this message: nothing is linked without this code.",
        PURPOSE,
    )
    return _page(token, row, account.email, status=200)


def _page(token: str, row: Connector, email: str, status: int, error: str | None = None
          ) -> Response:
    resp = Response(
        render_template("federation/link_code.html", token=token, connector=row,
                        masked=mask(email), error=error),
        mimetype="text/html",
    )
    resp.status_code = status
    return resp


def submit(token: str) -> Response:
    """Check the entered code; on success link the identity and finish the sign-in."""
    if not token or len(token) > 64:
        return error_response(400, "invalid_request", "Unknown or expired linking request.")
    data: dict[str, Any] | None = ephemeral().get(_key(token))
    ix = interaction.load(data["ix"]) if data else None
    row = connectors_repo.get(data["connector"]) if data else None
    if data is None or ix is None or row is None:
        return error_response(400, "invalid_request", "Unknown or expired linking request.")
    account = repo.account(data["account"])
    if account is None or not account.can_sign_in:
        ephemeral().delete(_key(token))
        return error_response(403, "access_denied", "This account cannot sign in.")
    code = (request.form.get("code") or "").strip()[:12]
    if not hasher().verify(f"{token}:{code}", PURPOSE, data["code_hash"]):
        tries = ephemeral().incr(f"fed:link-tries:{token}", CODE_TTL)
        if tries >= MAX_TRIES:
            ephemeral().delete(_key(token))
            return error_response(400, "invalid_request", "Too many wrong codes; start again.")
        return _page(token, row, account.email, status=400, error="wrong_code")
    if ephemeral().take(_key(token)) is None:  # a parallel submission won
        return error_response(400, "invalid_request", "Unknown or expired linking request.")
    identity = UpstreamIdentity(**data["identity"])
    try:
        linked = accounts.link(row, identity, account.id)
    except repo.IdentityConflict:
        return error_response(409, "conflict", "This company login is linked to another account.")
    from idp.federation.flow import finish

    return finish(ix, linked, identity)
