"""The dashboard's "Password" section (:mod:`idp.factors.passwords`), shown while the
account may use a password: its status (never the password), and a change with the
current password or with a fresh e-mail code.

The code is the login's own e-mail code (:mod:`idp.factors.email_otp`: its throttles,
its tries per code, its atomic redemption), sent to the account's address for a
dashboard interaction of this browser whose id is kept for 10 minutes under the
session's id hash. A person whose password was generated (``initial``,
``reset_by_staff``) is asked here to choose their own. POSTs carry the app-wide CSRF
token and answer 303 See Other (RFC 9110 §15.4.4)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response, request, url_for
from flask_babel import get_locale

from idp.dashboard import formstate
from idp.dashboard.blueprint import bp
from idp.factors import email_otp, passwords
from idp.factors.email_otp import RedeemOutcome, SendOutcome
from idp.interaction import pending as interaction
from idp.interaction import sessions, signed_in
from idp.login.common import own_interaction
from idp.login.formstate import FormState
from idp.services import ephemeral
from idp.web.redirects import redirect

CODE_TTL_SECONDS = 10 * 60
PARAM = "password_change"


@dataclass
class PasswordSection:
    """What the dashboard shows: whether the section applies, the status, whether a
    code was sent for a change."""

    allowed: bool
    status: str | None
    code_sent: bool


def _code_key(session_id_hash: str) -> str:
    return f"pwdchange:{session_id_hash}"


@bp.app_template_global("password_section")
def password_section(account_id: str) -> PasswordSection:
    """The account's password section for the dashboard template."""
    allowed = passwords.allowed(account_id)
    row = sessions.current()
    sent = allowed and row is not None and ephemeral().get(_code_key(row.id_hash)) is not None
    return PasswordSection(allowed, passwords.status(account_id) if allowed else None, sent)


def _back(session_id_hash: str, state: FormState) -> Response:
    formstate.remember(session_id_hash, state)
    return redirect(url_for("dashboard.home") + "#password", code=303)


@bp.post("/password")
def change_password() -> Response:
    """Change the password with the current one (counted like a sign-in attempt)."""
    login = signed_in.live_login()
    if login is None:
        return redirect(url_for("dashboard.home"), code=303)
    row, account = login
    refused = passwords.change_with_current(
        account, request.form.get("current_password", "")[:passwords.MAX_INPUT],
        request.form.get("new_password", "")[:passwords.MAX_INPUT],
        request.form.get("repeat_password", "")[:passwords.MAX_INPUT],
        request.remote_addr or "",
        keep_session=row.id_hash,
    )
    if refused is not None:
        field = "current_password" if refused in ("password_wrong", "password_throttled") else \
            "new_password"
        return _back(row.id_hash, FormState(errors={field: refused}))
    return _back(row.id_hash, FormState(notice="password_changed"))


@bp.post("/password/code")
def send_password_code() -> Response:
    """Send an e-mail code to the account's address for a password change."""
    login = signed_in.live_login()
    if login is None:
        return redirect(url_for("dashboard.home"), code=303)
    row, account = login
    if not passwords.allowed(account.id) or account.email is None:  # no mailbox for a code
        return _back(row.id_hash, FormState(errors={"new_password": "password_not_allowed"}))
    ix = own_interaction({PARAM: True})
    ix.email = account.email
    interaction.save(ix)
    sent = email_otp.send_code(ix, account.email, request.remote_addr or "", str(get_locale()))
    if sent is SendOutcome.THROTTLED:
        return _back(row.id_hash, FormState(errors={"code": "throttled"}))
    ephemeral().put(_code_key(row.id_hash), {"ix": ix.id}, CODE_TTL_SECONDS)
    return _back(row.id_hash, FormState(notice="password_code_sent"))


@bp.post("/password/with-code")
def change_password_with_code() -> Response:
    """Change the password with the e-mail code just sent: the new password is
    checked first (a refused one does not spend a try of the code), then the code is
    redeemed for this browser's interaction and the account's own address."""
    login = signed_in.live_login()
    if login is None:
        return redirect(url_for("dashboard.home"), code=303)
    row, account = login
    new = request.form.get("code_new_password", "")[:passwords.MAX_INPUT]
    refused = passwords.problem_with_new(
        account, new, request.form.get("code_repeat_password", "")[:passwords.MAX_INPUT]
    )
    if refused is not None:
        return _back(row.id_hash, FormState(errors={"code_new_password": refused}))
    pending = ephemeral().get(_code_key(row.id_hash))
    ix = interaction.load(str(pending.get("ix", ""))) if pending else None
    if ix is None or not ix.params.get(PARAM) or ix.email != account.email:
        return _back(row.id_hash, FormState(errors={"code": "code_expired"}))
    result = email_otp.redeem_code(ix, request.form.get("code", "")[:100])
    if result.outcome is not RedeemOutcome.OK or result.email != account.email:
        key = {
            RedeemOutcome.WRONG: f"wrong:{result.tries_left}",
            RedeemOutcome.EXHAUSTED: "code_exhausted",
        }.get(result.outcome, "code_expired")
        return _back(row.id_hash, FormState(errors={"code": key}))
    ephemeral().delete(_code_key(row.id_hash))
    interaction.consume(ix)
    passwords.set_own(account, new, via="email_code", keep_session=row.id_hash)
    return _back(row.id_hash, FormState(notice="password_changed"))


@bp.app_template_global("password_min_length")
def password_min_length() -> int:
    """``IDP_PASSWORD_MIN_LENGTH`` for the form's hint."""
    from idp.services import settings

    return settings().password_min_length
