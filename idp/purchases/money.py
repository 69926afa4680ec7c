"""Money as integer minor units: the ISO 4217 exponent of each accepted currency, a
strict parser of decimal strings (``"100.00"``) and the formatter back (the machine
form of APIs, claims, webhooks and CSV), and :func:`display`, the one way an amount is
shown to a person (pages and e-mails, template filter ``money``). Never a float."""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from typing import TYPE_CHECKING

from babel import Locale

if TYPE_CHECKING:
    from flask import Flask

# ISO 4217 minor-unit exponents of the currencies Unitgate accepts.
EXPONENTS: dict[str, int] = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "JPY": 0, "SEK": 2, "NOK": 2, "DKK": 2,
    "PLN": 2, "CZK": 2, "HUF": 2, "CAD": 2, "AUD": 2, "NZD": 2, "CNY": 2, "INR": 2,
    "KRW": 0, "ISK": 0, "BHD": 3, "KWD": 3, "JOD": 3, "TND": 3,
}
MAX_MINOR = 10**15  # a bound far above any order, far below a 64-bit integer
_AMOUNT = re.compile(r"^(0|[1-9][0-9]{0,14})(?:\.([0-9]+))?$")


class MoneyError(ValueError):
    """An amount or currency that is not acceptable; ``code`` names the problem."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def currency(code: object) -> str:
    """``code`` as an accepted ISO 4217 code (upper case), else :class:`MoneyError`."""
    if not isinstance(code, str) or code.upper() not in EXPONENTS:
        raise MoneyError(
            "unknown_currency", "currency must be one of " + ", ".join(sorted(EXPONENTS))
        )
    return code.upper()


def parse(text: object, code: str) -> int:
    """The decimal string ``text`` ("100.00", "5", "0.5") in minor units of ``code``.
    Refused: anything but plain digits with an optional point (no sign, exponent,
    spaces, thousands separators), more decimals than the currency has, zero."""
    exponent = EXPONENTS[currency(code)]
    if not isinstance(text, str):
        raise MoneyError("invalid_amount", "amount must be a decimal string such as \"100.00\"")
    match = _AMOUNT.match(text)
    if match is None:
        raise MoneyError("invalid_amount", "amount must be a decimal string such as \"100.00\"")
    decimals = match.group(2) or ""
    if len(decimals) > exponent:
        raise MoneyError(
            "invalid_amount", f"{code} has {exponent} decimal places; {text!r} has more"
        )
    minor = int(Decimal(text).scaleb(exponent))
    if minor <= 0 or minor > MAX_MINOR:
        raise MoneyError("invalid_amount", "amount must be above zero and below 10^15 minor units")
    return minor


def format_minor(minor: int, code: str) -> str:
    """``minor`` units of ``code`` as a decimal string with the currency's places
    ("100.00", "1500" for JPY, "-3.50")."""
    exponent = EXPONENTS[code]
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}" + (f".{frac:0{exponent}d}" if exponent else "")


def display(minor: int, code: str, locale: str) -> str:
    """``minor`` units of ``code`` for a person reading ``locale`` (a language code such
    as ``de`` or ``en``): the locale's currency format from CLDR (Babel), with the
    currency's ISO 4217 places ("80,00\u00a0€" in German, "€80.00" in English,
    "1.500\u00a0¥"). The one way an amount reaches a page or an e-mail; APIs, claims,
    webhooks, audit details and CSV keep :func:`format_minor`."""
    exponent = EXPONENTS[code]
    pattern = copy.copy(Locale.parse(locale).currency_formats["standard"])
    pattern.frac_prec = (exponent, exponent)  # ISO 4217's places, not CLDR's (HUF)
    return pattern.apply(Decimal(minor).scaleb(-exponent), locale, currency=code,
                         currency_digits=False)


def minor_of(text: str, code: str) -> int:
    """The machine decimal string ``text`` that :func:`format_minor` wrote (negative
    and zero allowed) back in minor units of ``code``; :class:`MoneyError` for
    anything else."""
    exponent = EXPONENTS[currency(code)]
    try:
        value = Decimal(text).scaleb(exponent)
    except (ArithmeticError, TypeError, ValueError):
        raise MoneyError("invalid_amount", f"{text!r} is not an amount") from None
    if not value.is_finite() or value != value.to_integral_value():
        raise MoneyError("invalid_amount", f"{text!r} is not an amount in {code}")
    return int(value)


def money_filter(amount: object, code: str) -> str:
    """The templates' ``money`` filter: ``{{ p.amount|money(p.currency) }}`` with the
    machine decimal string (:func:`format_minor`) that a described purchase, budget or
    queued e-mail holds, shown by :func:`display` in the page's or e-mail's language
    (Flask-Babel's locale, which ``force_locale`` sets for an e-mail). A value that is
    no amount of ``code`` is shown as it is, followed by the code."""
    from idp.i18n import current_language

    try:
        return display(minor_of(str(amount), code), currency(code), current_language())
    except MoneyError:
        return f"{amount} {code}"


def init_app(app: Flask) -> None:
    """Register the ``money`` template filter (:func:`money_filter`)."""
    app.add_template_filter(money_filter, "money")
