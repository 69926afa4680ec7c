"""User-facing messages of the dashboard, by key, in the request's language (keys
travel from a POST to the following GET, see :mod:`idp.dashboard.formstate`)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from idp.login.messages import MESSAGES as LOGIN_MESSAGES
from idp.login.messages import message as login_message

MESSAGES = {
    "profile_saved": _l("Your profile was saved."),
    "profile_unchanged": _l("Nothing was changed."),
    "consent_withdrawn": _l(
        "Consent withdrawn. The merchant will ask you again at your next sign-in there."
    ),
    "consent_gone": _l("There was no consent to withdraw."),
    "consent_changed": _l(
        "Your choice was saved. The merchant receives it from your next sign-in there."
    ),
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
    # the password section (idp.dashboard.views_password)
    "password_changed": _l("Your password was changed."),
    "password_code_sent": _l(
        "We sent a code to your e-mail address. Enter it with your new password."
    ),
    "password_wrong": _l("Your current password is not right."),
    "password_throttled": _l(
        "Too many attempts. Please wait 15 minutes, or change it with an e-mail code."
    ),
    "password_mismatch": _l("The two new passwords are not the same."),
    "password_too_short": _l("Choose a longer password."),
    "password_too_long": _l("This password is too long."),
    "password_personal": _l("Do not use your e-mail address or your name as a password."),
    "password_common": _l(
        "This password is too common: it appears in lists of leaked passwords. "
        "Choose another one."
    ),
    "password_not_allowed": _l("None of your companies allows passwords."),
    # the passkeys section (idp.dashboard.views_passkeys)
    "passkey_registered": _l("Your passkey was added."),
    "passkey_renamed": _l("The passkey was renamed."),
    "passkey_removed": _l("The passkey was removed."),
    "passkey_name": _l("Enter a name for the passkey."),
    "passkey_limit": _l("You have too many passkeys. Remove one first."),
    "passkey_duplicate": _l("This passkey is already registered."),
    "passkey_reauth": _l(
        "For your security, sign in again before removing a passkey."
    ),
    # the sessions section (idp.dashboard.views_sessions)
    "sessions_ended": _l("Signed out there. Merchants you used there were told."),
    "sessions_none": _l("That session had already ended."),
}


def message(key: str | None) -> str:
    """The text of ``key`` in the current language ("" for None or an unknown key)."""
    if not key:
        return ""
    if key.startswith("wrong:"):
        return login_message(key)
    text = MESSAGES.get(key) or LOGIN_MESSAGES.get(key)
    return str(text) if text is not None else ""
