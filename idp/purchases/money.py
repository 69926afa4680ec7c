"""Money as integer minor units: the ISO 4217 exponent of each accepted currency, a
strict parser of decimal strings (``"100.00"``) and the formatter back. Never a float."""

from __future__ import annotations

import re
from decimal import Decimal

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
