"""Who the second-factor step of a login interaction is for (the TOTP pages,
:mod:`idp.login.views_totp`, and the passkey step, :mod:`idp.login.views_passkey`)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort

from idp.accounts import lifecycle as accounts
from idp.factors import totp
from idp.interaction.pending import Interaction
from idp.login.common import acting
from idp.store.models import Account


@dataclass
class Subject:
    """Who the TOTP page is for: the account and the methods of its first factor."""

    account: Account
    amr: list[str]
    acr: str | None
    held: bool  # True: first factor held by idp.factors.totp.hold (no session yet)


def subject(ix: Interaction) -> Subject | None:
    pending = totp.held(ix.id)
    if pending is not None:
        account = accounts.get(str(pending.get("account_id") or ""))
        amr = [str(v) for v in pending.get("amr") or []]
        acr = pending.get("acr")
        held = True
    elif ix.authenticated and (
        totp.owed(ix.account_id or "", ix.amr, ix.require_mfa)
        or (ix.params.get("totp_setup") is True and not totp.enrolled(ix.account_id or ""))
    ):  # a live session without a second factor, or set-up asked for on the dashboard
        account = accounts.get(ix.account_id or "")
        amr, acr, held = list(ix.amr), ix.acr, False
    else:
        return None
    if account is None or not account.can_sign_in:
        return None
    if not held and acting(ix):  # never the person's factor while someone acts as them
        abort(403)
    return Subject(account, amr, acr if isinstance(acr, str) else None, held)
