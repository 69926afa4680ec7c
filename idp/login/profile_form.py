"""Server-side validation of the wallet profile form (never trust the browser's
``required``/``maxlength``): required fields present, lengths within the database
columns, no control characters, and a unit field's value fitting its type
(:mod:`idp.units.field_types`, stored in its canonical form)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from idp.i18n import current_language
from idp.store.models import UnitProfileField
from idp.units import field_types

EXTRA_PREFIX = "extra__"


@dataclass(frozen=True)
class FieldSpec:
    name: str  # form field name
    label: Any  # the unit's own label, or a lazily translated one (base fields)
    required: bool
    max_length: int
    autocomplete: str | None = None
    unit_field: str | None = None  # the UnitProfileField name for extra fields
    kind: str = "text"  # a unit field's type (idp.units.field_types.TYPES)
    choices: tuple[str, ...] = ()  # a choice field's choices
    hint: str | None = None  # a unit field's help text in the page's language
    definition: Any = None  # the UnitProfileField, to check a value against its type


BASE_FIELDS = (
    FieldSpec("given_name", _l("Given name"), True, 200, "given-name"),
    FieldSpec("family_name", _l("Family name"), True, 200, "family-name"),
)
# Employer facts: asked only when the wallet has a unit to keep them for (the unit
# chosen for the sign-in, the only one, or the one a first sign-in joins).
FACT_FIELDS = (
    FieldSpec("cost_centre", _l("Cost centre"), False, 100, "off"),
    FieldSpec("personnel_number", _l("Personnel number"), False, 100, "off"),
)
UNIT_FIELD_MAX_LENGTH = 200


def _key(text: str) -> str:
    return " ".join(text.replace("_", " ").casefold().split())


def shadowed(builtins: list[tuple[str, Any]], unit_fields: list[UnitProfileField]) -> set[str]:
    """The names of the built-in fields (``(name, label)`` pairs) that a unit field
    shadows, so that a form shows one "Department", not two.

    The rule (docs/account.md): a unit field shadows a built-in field when its name
    or its label equals the built-in's name (``cost_centre`` as "cost centre") or its
    label in the page's language, ignoring case and underscores. The unit's field
    wins: it is shown with its own label and required flag; the built-in one is not
    offered (its stored value is kept and released as before)."""
    taken = {_key(f.name) for f in unit_fields} | {_key(f.label or "") for f in unit_fields}
    return {name for name, label in builtins if {_key(name), _key(str(label))} & taken}


def unit_field_spec(f: UnitProfileField, form_name: str) -> FieldSpec:
    """The form field of the unit field ``f``: its label and help text in the page's
    language (a money field's label names its currency), its type and choices."""
    language = current_language()
    label = field_types.label(f, language)
    if f.type == "money" and f.currency:
        label = f"{label} ({f.currency})"
    return FieldSpec(
        name=form_name,
        label=label,
        required=bool(f.required),
        max_length=UNIT_FIELD_MAX_LENGTH,
        unit_field=f.name,
        kind=f.type or "text",
        choices=tuple(f.choices or ()),
        hint=field_types.help_text(f, language),
        definition=f,
    )


def field_specs(unit_fields: list[UnitProfileField], facts: bool = True) -> list[FieldSpec]:
    """The base fields, the employer facts (when ``facts``; not those a unit field
    shadows, :func:`shadowed`), then the units' extra fields that the employee sets
    (not those the company sets, ``set_by`` company)."""
    extra = [
        unit_field_spec(f, EXTRA_PREFIX + f.name)
        for f in unit_fields
        if not field_types.company_set(f)
    ]
    hidden = shadowed([(f.name, f.label) for f in FACT_FIELDS], unit_fields)
    shown_facts = [f for f in FACT_FIELDS if f.name not in hidden] if facts else []
    return [*BASE_FIELDS, *shown_facts, *extra]


def _clean(value: str) -> str:
    return unicodedata.normalize("NFC", " ".join(value.split()))


def _has_control(value: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in value)


def validate(
    form: MultiDict[str, str], specs: list[FieldSpec]
) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """Check the submitted ``form`` against ``specs``.

    Returns ``(profile, errors, values)``: ``profile`` in the shape
    :func:`idp.accounts.lifecycle.create_wallet` takes (unit fields under ``extra``),
    ``errors`` mapping field names to message keys (empty when valid) and the
    cleaned ``values`` to show again."""
    profile: dict[str, Any] = {"extra": {}}
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    for spec in specs:
        raw = form.get(spec.name, "")
        if len(raw) > 4 * spec.max_length:
            raw = raw[: 4 * spec.max_length]
        value = _clean(raw)
        values[spec.name] = value[: spec.max_length + 50]
        if _has_control(value):
            errors[spec.name] = "invalid_chars"
        elif spec.required and not value:
            errors[spec.name] = "required"
        elif len(value) > spec.max_length:
            errors[spec.name] = "too_long"
        elif value and spec.definition is not None:
            try:
                value = field_types.normalise(spec.definition, value)
            except field_types.FieldValueError as exc:
                errors[spec.name] = exc.code
        if spec.unit_field is not None:
            profile["extra"][spec.unit_field] = value
        else:
            profile[spec.name] = value
    return profile, errors, values
