"""The e-mail and one-time-code pages of the login interaction.

``GET /interaction/<id>`` is where the protocol side sends the browser
(``login.start``). Every POST answers 303 (Post/Redirect/Get); errors travel to the
next GET through :mod:`idp.login.formstate`.
"""

from __future__ import annotations

from flask import Response, request
from flask_babel import get_locale

from idp.accounts import lifecycle as accounts
from idp.factors import email_otp
from idp.factors.email_otp import CodeState, RedeemOutcome, SendOutcome
from idp.interaction import pending as interaction
from idp.login import proof
from idp.login.blueprint import bp
from idp.login.common import Expired, expired_page, load, page
from idp.login.email_signin import (
    finish_email_sign_in,
    sso_for_login_hint,
    sso_instead_of_code,
)
from idp.login.flow import next_step, see_other
from idp.login.formstate import FormState, recall, remember


@bp.errorhandler(Expired)
def _expired(exc: Expired) -> Response:
    """Any login page of an unknown, expired or foreign interaction: 400, not 500."""
    return expired_page(str(exc.args[0]) if exc.args else None)


@bp.get("/<interaction_id>")
def start(interaction_id: str) -> Response:
    """The first login page: the e-mail form, prefilled from ``login_hint``; an
    interaction already authenticated by a live session goes straight on, and a
    ``login_hint`` whose domain requires SSO goes straight to the upstream IdP."""
    ix = load(interaction_id)
    if ix.authenticated:
        return next_step(ix)
    state = recall(ix, "email")
    if not state.errors:
        sso = sso_for_login_hint(ix)
        if sso is not None:
            return sso
    state.values.setdefault("email", ix.email or ix.login_hint or "")
    return page("login/email.html", ix, state)


@bp.post("/<interaction_id>/email")
def submit_email(interaction_id: str) -> Response:
    """Send a code to the submitted address; the same answer whether or not the
    address has an account."""
    ix = load(interaction_id)
    if ix.authenticated:
        return next_step(ix)
    raw = request.form.get("email", "")[:1000]
    try:
        email = accounts.normalise_email(raw)
    except accounts.InvalidEmail:
        remember(ix, "email", FormState(errors={"email": "email_invalid"},
                                           values={"email": raw.strip()[:320]}))
        return see_other("login.start", interaction_id=ix.id)
    sso = sso_instead_of_code(ix, email)  # a require_sso domain goes to its IdP, never a code
    if sso is not None:
        return sso
    outcome = email_otp.send_code(ix, email, request.remote_addr or "", str(get_locale()))
    if outcome is SendOutcome.THROTTLED:
        remember(ix, "email", FormState(errors={"email": "throttled"},
                                           values={"email": email}))
        return see_other("login.start", interaction_id=ix.id)
    ix.email = email
    interaction.save(ix)
    return see_other("login.code", interaction_id=ix.id)


@bp.get("/<interaction_id>/code")
def code(interaction_id: str) -> Response:
    """The code form: says where the code went and how long it is valid."""
    ix = load(interaction_id)
    if ix.authenticated:
        return next_step(ix)
    if not ix.email:
        return see_other("login.start", interaction_id=ix.id)
    sso = sso_instead_of_code(ix, ix.email)  # no code page for an address sent upstream
    if sso is not None:
        return sso
    state = recall(ix, "code")
    live = email_otp.code_state(ix)
    if live is not CodeState.LIVE and "code" not in state.errors and not state.notice:
        # No code can be entered (too many tries, expired): say so, offer only a new one.
        state.errors["code"] = (
            "code_exhausted" if live is CodeState.EXHAUSTED else "code_expired"
        )
    return page(
        "login/code.html", ix, state, minutes=email_otp.code_lifetime_seconds() // 60,
        code_live=live is CodeState.LIVE,
    )


@bp.post("/<interaction_id>/code")
def submit_code(interaction_id: str) -> Response:
    """Redeem the code: an existing account is signed in, an unknown address goes on
    to create its wallet."""
    ix = load(interaction_id)
    if ix.authenticated:
        return next_step(ix)
    if not ix.email:
        return see_other("login.start", interaction_id=ix.id)
    sso = sso_instead_of_code(ix, ix.email)  # the domain requires SSO (now): no code counts
    if sso is not None:
        return sso
    result = email_otp.redeem_code(ix, request.form.get("code", "")[:100])
    if result.outcome is RedeemOutcome.OK and result.email:
        if result.account is not None:
            return finish_email_sign_in(ix, result.account)
        proof.remember(ix, result.email)
        return see_other("login.profile", interaction_id=ix.id)
    key = {
        RedeemOutcome.WRONG: f"wrong:{result.tries_left}",
        RedeemOutcome.EXHAUSTED: "code_exhausted",
    }.get(result.outcome, "code_expired")
    remember(ix, "code", FormState(errors={"code": key}))
    return see_other("login.code", interaction_id=ix.id)


@bp.post("/<interaction_id>/resend")
def resend(interaction_id: str) -> Response:
    """Send a new code to the same address; the previous one stops working."""
    ix = load(interaction_id)
    if ix.authenticated:
        return next_step(ix)
    if not ix.email:
        return see_other("login.start", interaction_id=ix.id)
    sso = sso_instead_of_code(ix, ix.email)  # never a code for an address sent upstream
    if sso is not None:
        return sso
    outcome = email_otp.send_code(ix, ix.email, request.remote_addr or "", str(get_locale()))
    state = (
        FormState(notice="code_resent")
        if outcome is SendOutcome.SENT
        else FormState(errors={"code": "throttled"})
    )
    remember(ix, "code", state)
    return see_other("login.code", interaction_id=ix.id)
