"""Who is signed in: the one test that the OIDC and SAML protocol sides and the
dashboard apply to a browser session, so they can never disagree.

A session counts only while its account may still sign in and its login owes no
second factor (a business unit's TOTP policy that is newer than the login).
"""

from __future__ import annotations

from idp.accounts import lifecycle as accounts
from idp.factors import totp
from idp.interaction import sessions
from idp.interaction.pending import Interaction
from idp.store.models import Account, Session


def live_login() -> tuple[Session, Account] | None:
    """This browser's live session and its account, or None when there is none that
    counts (no session, account blocked or deactivated, TOTP code still owed)."""
    row = sessions.current()
    if row is None:
        return None
    account = accounts.get(row.account_id)
    if account is None or not account.can_sign_in:
        return None
    # An impersonation's session carries the actor's login; the target's TOTP policy
    # is about the target's own factors (idp.interaction.impersonation).
    if row.impersonation_id is None and totp.due(account.id, list(row.amr or [])):
        return None
    return row, account


def current() -> tuple[Session, Account] | None:
    """:func:`live_login` for Unitgate's own pages (dashboard, console): a session that
    does not count (account blocked or deactivated, TOTP code owed) is ended here, so
    their login starts afresh."""
    login = live_login()
    if login is None and sessions.current() is not None:
        sessions.end(page=False)  # no logout page here: the back channels tell
    return login


def owes_second_factor(ix: Interaction) -> bool:
    """Whether an authenticated interaction must still pass the TOTP step (a unit's
    policy or a merchant's step-up request) before the protocol side may answer."""
    return ix.authenticated and totp.owed(str(ix.account_id), ix.amr, ix.require_mfa)
