"""User-facing messages of the dashboard, by key, in the request's language (keys
travel from a POST to the following GET, see :mod:`idp.dashboard.formstate`)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from idp.login.messages import MESSAGES as LOGIN_MESSAGES

MESSAGES = {
    "profile_saved": _l("Your profile was saved."),
    "profile_unchanged": _l("Nothing was changed."),
    "consent_withdrawn": _l(
        "Consent withdrawn. The merchant will ask you again at your next sign-in there."
    ),
    "consent_gone": _l("There was no consent to withdraw."),
    "managed": _l("This field is now managed by your company and cannot be changed here."),
    "busy": _l("Your profile is being changed elsewhere. Please try again."),
    "joined": _l("You joined the company."),
    "join_gone": _l("This company no longer lists you, or you already joined it."),
    "join_managed": _l(
        "Your account is already managed by a company's directory, so it cannot join "
        "another one's. Please ask that company's administrator."
    ),
    "join_needs_code": _l(
        "To join, sign in with a code sent to your e-mail address first."
    ),
}


def message(key: str | None) -> str:
    """The text of ``key`` in the current language ("" for None or an unknown key)."""
    if not key:
        return ""
    text = MESSAGES.get(key) or LOGIN_MESSAGES.get(key)
    return str(text) if text is not None else ""
