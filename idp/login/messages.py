"""User-facing messages of the login pages, by key, in the request's language.

Keys travel between a POST and the following GET (:mod:`idp.login.formstate`); the
text is looked up only when the page renders, in the language of that page. No
message tells whether an address has an account.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

MESSAGES = {
    "email_invalid": _l("Enter a valid e-mail address, like name@company.com."),
    "throttled": _l(
        "Too many codes were requested. Please wait 15 minutes and try again."
    ),
    "code_format": _l("Enter the 6-digit code from the e-mail."),
    "code_exhausted": _l(
        "Too many wrong codes. This code no longer works: request a new one."
    ),
    "code_expired": _l(
        "This code has expired or was already used. Request a new code."
    ),
    "code_resent": _l(
        "We sent you a new code. The previous code no longer works."
    ),
    "required": _l("This field is required."),
    "too_long": _l("This is too long."),
    "invalid_chars": _l("This contains characters that are not allowed."),
    "unit_choice": _l("Choose one of your companies."),
    # a unit field's value that does not fit its type (idp.units.field_types)
    "field_number": _l("Enter a number, like 12 or 12.5."),
    "field_money": _l(
        "Enter an amount, like 12.50, with no more decimal places than the currency has."
    ),
    "field_date": _l("Enter a date as year-month-day, like 2026-12-31."),
    "field_choice": _l("Choose one of the offered values."),
    "field_phone": _l("Enter the number with its country code, like +49 30 1234567."),
    "proof_expired": _l(
        "Your confirmation has expired. Please request a new code."
    ),
    "busy": _l("Your details were being changed at the same moment. Please save again."),
    "passkey_expired": _l("The passkey request has expired. Please try again."),
    "passkey_failed": _l("The passkey could not be checked. Please try again or use a code."),
    "passkey_unknown": _l(
        "This passkey is not known here (it may have been removed). Please use a code."
    ),
    "passkey_counter": _l(
        "This passkey was refused because it may have been copied. Please use a code "
        "and tell your administrator."
    ),
    "passkey_fresh_code": _l(
        "Your company asks for a new e-mail code at every sign-in. Please use a code."
    ),
}


def message(key: str | None) -> str:
    """The text of ``key`` in the current language ("" for None); ``wrong:<n>`` is
    the wrong-code message with ``n`` tries left."""
    if not key:
        return ""
    if key.startswith("wrong:") and key[6:].isdigit():
        return wrong_code(int(key[6:]))
    return str(MESSAGES.get(key, MESSAGES["code_expired"]))


def wrong_code(tries_left: int) -> str:
    """The wrong-code message with the number of tries left."""
    return ngettext(
        "That code is not right. You have %(num)d more try.",
        "That code is not right. You have %(num)d more tries.",
        tries_left,
    )
