"""The dashboard's "Where you are signed in" section (:mod:`idp.interaction.sessions`):
the account's live browser sessions, this browser's marked, with a sign-out of one
other session or of all others. The relying parties of an ended session get their
back-channel logouts (:func:`idp.interaction.rp_logout.stage_end_sessions`). While
someone acts as the employee (impersonation) the list is shown but nothing can be
ended: the actor may not sign the employee out. POSTs carry the app-wide CSRF token
and answer 303 See Other (RFC 9110 §15.4.4)."""

from __future__ import annotations

from flask import Response, request, url_for
from flask_babel import lazy_gettext as _l

from idp.dashboard import formstate
from idp.dashboard.blueprint import bp
from idp.interaction import sessions, signed_in
from idp.login.formstate import FormState
from idp.web.redirects import redirect

MAX_HANDLE = 64

# How a session signed in (its ``amr`` values, RFC 8176), for the list.
METHODS = dict.fromkeys(("hwk", "swk", "user"), _l("passkey")) | {
    "otp": _l("e-mail code"), "pwd": _l("password"),
    "mfa": _l("two-step verification"), "fed": _l("company sign-in"),
}


@bp.app_template_global("session_methods")
def session_methods(amr: list[str]) -> str:
    """How a session signed in, in the reader's language (known methods only)."""
    names = dict.fromkeys(str(METHODS[m]) for m in amr if m in METHODS)
    return ", ".join(names)


@bp.app_template_global("sessions_of")
def sessions_of(account_id: str) -> list[sessions.Listed]:
    """The account's live sessions for the dashboard template, this browser's marked."""
    return sessions.listed(account_id, sessions.presented_hash())


@bp.app_template_global("sessions_manageable")
def sessions_manageable() -> bool:
    """Whether this browser may end the account's other sessions: only the
    employee's own session, not an impersonation acting as them."""
    login = signed_in.live_login()
    return login is not None and login[0].impersonation_id is None


def _see_section() -> Response:
    return redirect(url_for("dashboard.home") + "#sessions", code=303)


@bp.post("/sessions/end")
def end_sessions() -> Response:
    """End one other session (form field ``session``: a listed handle) or, without
    it, all other sessions of this browser's account; this browser stays signed in."""
    login = signed_in.live_login()
    if login is None or login[0].impersonation_id is not None:
        return _see_section()
    row, account = login
    handle = request.form.get("session") or None
    malformed = handle is not None and (len(handle) > MAX_HANDLE or not handle.isalnum())
    ended = 0 if malformed else sessions.end_others(account.id, row.id_hash, handle)
    notice = "sessions_ended" if ended else "sessions_none"
    formstate.remember(row.id_hash, FormState(notice=notice))
    return _see_section()
