"""Types of a unit's own profile fields (issue 16 item 3; ``docs/companies.md``).

A unit field (:class:`~idp.store.models.UnitProfileField`) has a ``type``:

* ``text`` (the default, and the type of every field defined before types existed),
* ``number`` (a decimal number, ``-12.5``; a decimal comma is accepted and stored
  as a point),
* ``money`` (a non-negative amount in the field's ISO 4217 ``currency``, with at most
  the currency's decimal places, :mod:`idp.purchases.money`),
* ``date`` (ISO 8601 calendar date, ``2026-12-31``),
* ``choice`` (exactly one of the field's ``choices``),
* ``email`` (an address, stored in lower case),
* ``phone`` (E.164: ``+`` and 8 to 15 digits; spaces, dashes and brackets dropped).

Values are stored as canonical text on the access (``Access.extra``); :func:`normalise`
turns what a person or a directory wrote into that text or raises
:class:`FieldValueError` with a ``code`` that is also a message key of the forms
(:mod:`idp.login.messages`). :func:`claim_value` gives the typed value merchants
receive (a JSON number, ``{"amount": "12.50", "currency": "EUR"}``, an ISO date
string, else the text) and :func:`saml_value` its string form in SAML
(``12.5``, ``12.50 EUR``, ``2026-12-31``). A stored value that does not fit the
field's type (a text typed before the field's type was changed) is not released:
:func:`claim_value` returns None for it, and the dashboard shows it to be corrected.

A field ``set_by`` ``company`` is the company's own fact about the person (a purchase
limit): only its HR system or directory writes it, never the employee.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from idp.i18n import SUPPORTED as LANGUAGES
from idp.purchases import money

TYPES: tuple[str, ...] = ("text", "number", "money", "date", "choice", "email", "phone")
SET_BY: tuple[str, ...] = ("employee", "company")
EMPLOYEE = "employee"
COMPANY = "company"
MAX_CHOICES = 50
MAX_CHOICE_LENGTH = 100
MAX_HELP_LENGTH = 500
_NUMBER = re.compile(r"^-?[0-9]{1,15}(?:\.[0-9]{1,6})?$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
# The message key of each type's refusal (``idp.login.messages``).
ERROR_KEYS: dict[str, str] = {
    "number": "field_number",
    "money": "field_money",
    "date": "field_date",
    "choice": "field_choice",
    "email": "email_invalid",
    "phone": "field_phone",
}


class FieldDefinition(Protocol):
    """What a value check needs of a field definition (a ``UnitProfileField`` row)."""

    name: str
    type: str
    currency: str | None
    choices: list[str]


class FieldValueError(ValueError):
    """A value that does not fit its field's type; ``code`` is the form's message
    key, the text says why in English (for SCIM and the admin interfaces)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class DefinitionError(ValueError):
    """A field definition that is not acceptable (a type, currency or choice list)."""


@dataclass(frozen=True)
class Definition:
    """A validated type part of a field definition."""

    type: str
    currency: str | None
    choices: list[str]
    labels: dict[str, str]
    help: dict[str, str]
    set_by: str


def _texts(value: Any, what: str, max_len: int) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DefinitionError(f"{what}: a mapping of language to text")
    out: dict[str, str] = {}
    for lang, text in value.items():
        if lang not in LANGUAGES:
            raise DefinitionError(f"{what}: languages are {', '.join(LANGUAGES)}")
        if not isinstance(text, str) or len(text.strip()) > max_len or "\x00" in text:
            raise DefinitionError(f"{what}: text of at most {max_len} characters")
        if text.strip():
            out[lang] = text.strip()
    return out


def definition(
    type_: Any = "text",
    currency: Any = None,
    choices: Any = None,
    labels: Any = None,
    help_: Any = None,
    set_by: Any = EMPLOYEE,
) -> Definition:
    """The type part of a field definition, checked: a known type; a currency (ISO
    4217, one Unitgate accepts) for money and only for money; 1 to 50 distinct
    choices for a choice field and only for it; labels and help texts per supported
    language; ``set_by`` employee or company. :class:`DefinitionError` otherwise."""
    if type_ not in TYPES:
        raise DefinitionError(f"type: one of {', '.join(TYPES)}")
    code: str | None = None
    if type_ == "money":
        try:
            code = money.currency(currency)
        except money.MoneyError as exc:
            raise DefinitionError(f"currency: {exc.detail}") from None
    elif currency not in (None, ""):
        raise DefinitionError("currency: only for a money field")
    options: list[str] = []
    if type_ == "choice":
        if not isinstance(choices, list | tuple) or not choices:
            raise DefinitionError("choices: a choice field needs at least one choice")
        for choice in choices:
            text = choice.strip() if isinstance(choice, str) else ""
            if not text or len(text) > MAX_CHOICE_LENGTH:
                raise DefinitionError(f"choices: 1 to {MAX_CHOICE_LENGTH} characters each")
            if text not in options:
                options.append(text)
        if len(options) > MAX_CHOICES:
            raise DefinitionError(f"choices: at most {MAX_CHOICES}")
    elif choices:
        raise DefinitionError("choices: only for a choice field")
    if set_by not in SET_BY:
        raise DefinitionError(f"set_by: one of {', '.join(SET_BY)}")
    return Definition(
        type=str(type_), currency=code, choices=options,
        labels=_texts(labels, "labels", 200), help=_texts(help_, "help", MAX_HELP_LENGTH),
        set_by=str(set_by),
    )


def normalise(field: FieldDefinition, value: str) -> str:
    """``value`` (already stripped, not empty) as the canonical text of ``field``'s
    type, or :class:`FieldValueError`."""
    kind = field.type or "text"
    if kind == "number":
        text = value.replace(",", ".") if "." not in value else value
        if not _NUMBER.match(text):
            raise FieldValueError("field_number", f"{field.name} must be a number like 12.5")
        return text
    if kind == "money":
        code = field.currency or "EUR"
        text = value.replace(",", ".") if "." not in value else value
        try:
            minor = money.parse(text, code)
        except money.MoneyError:
            if text.strip() in ("0", "0.0", "0.00"):
                minor = 0
            else:
                raise FieldValueError(
                    "field_money", f"{field.name} must be an amount in {code} like 12.50"
                ) from None
        return money.format_minor(minor, code)
    if kind == "date":
        try:
            if not _DATE.match(value):
                raise ValueError(value)
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise FieldValueError(
                "field_date", f"{field.name} must be a date like 2026-12-31"
            ) from None
    if kind == "choice":
        if value not in (field.choices or []):
            raise FieldValueError("field_choice", f"{field.name} must be one of its choices")
        return value
    if kind == "email":
        from idp.accounts.lifecycle import InvalidEmail, normalise_email

        try:
            return normalise_email(value)
        except InvalidEmail:
            raise FieldValueError(
                "email_invalid", f"{field.name} must be an e-mail address"
            ) from None
    if kind == "phone":
        from idp.accounts.invites import ContactRefused, normalise_mobile

        try:
            return normalise_mobile(value) or ""
        except ContactRefused:
            raise FieldValueError(
                "field_phone", f"{field.name} must be a phone number like +4930123456"
            ) from None
    return value


def claim_value(field: FieldDefinition, stored: Any) -> Any:
    """The typed value merchants receive for ``stored``: a JSON number for a number
    field, ``{"amount": "12.50", "currency": "EUR"}`` for money, the ISO string for a
    date, else the text. None when the stored value does not fit the type."""
    if stored in (None, ""):
        return None
    text = str(stored)
    try:
        canonical = normalise(field, text)
    except FieldValueError:
        return None
    if field.type == "number":
        number = Decimal(canonical)
        return int(number) if number == number.to_integral_value() else float(number)
    if field.type == "money":
        return {"amount": canonical, "currency": field.currency or "EUR"}
    return canonical


def saml_value(value: Any) -> str:
    """The string form of a typed claim value in a SAML attribute: a number as
    written (``12.5``), money as amount and currency (``12.50 EUR``), else the text."""
    if isinstance(value, dict) and {"amount", "currency"} <= set(value):
        return f"{value['amount']} {value['currency']}"
    if isinstance(value, float):
        try:
            return format(Decimal(repr(value)).normalize(), "f")
        except InvalidOperation:
            return str(value)
    return str(value)


def label(field: Any, language: str) -> str:
    """The field's label in ``language`` (else English, else its default label)."""
    labels = field.labels or {}
    return str(labels.get(language) or labels.get("en") or field.label or field.name)


def help_text(field: Any, language: str) -> str | None:
    """The field's help text in ``language`` (else English), None without one."""
    texts = field.help or {}
    return texts.get(language) or texts.get("en") or None


def company_set(field: Any) -> bool:
    """True for a field only the company sets (``set_by`` company)."""
    return (field.set_by or EMPLOYEE) == COMPANY
