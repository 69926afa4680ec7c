"""The "Your profile" form of the dashboard.

Every profile field is shown; the ones the employee may edit
(:func:`idp.accounts.field_owners.employee_editable`) as inputs, the ones an HR system,
directory or SSO owns read-only with who manages them. Saving goes through
:func:`idp.accounts.lifecycle.employee_update`, which re-checks ownership in the same
transaction, so a field that HR took over meanwhile is refused, never overwritten.

Personal fields (names, phone) are the account's; employer facts (department, cost
centre, personnel number, the unit's own fields) are those of the access to the
company shown (``?unit=``, by default the first), each company its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from idp import audit
from idp.accounts import field_owners
from idp.accounts import lifecycle as accounts
from idp.login.profile_form import FieldSpec, shadowed, unit_field_spec, validate
from idp.provisioning.errors import Busy, FieldOwned, InvalidValue, NotFound
from idp.store.models import Access, Account
from idp.units import field_types

# (attribute name, label, required, autocomplete) of the account's own profile columns
# that the dashboard offers; e-mail is shown in the header, not here.
BASE_FIELDS: tuple[tuple[str, Any, bool, str | None], ...] = (
    ("given_name", _l("Given name"), True, "given-name"),
    ("family_name", _l("Family name"), True, "family-name"),
    ("phone_number", _l("Phone number"), False, "tel"),
)
# The employer facts of the access shown (same shape).
FACT_FIELDS: tuple[tuple[str, Any, bool, str | None], ...] = (
    ("department", _l("Department"), False, "off"),
    ("cost_centre", _l("Cost centre"), False, "off"),
    ("personnel_number", _l("Personnel number"), False, "off"),
)
FORM_EXTRA_PREFIX = "extra__"
UNIT_FIELD_MAX_LENGTH = 200
MANAGERS = {
    "scim": _l("Managed by your company's HR system"),
    "ldap": _l("Managed by your company's directory"),
    "sso": _l("Managed by your company's sign-in (SSO)"),
    "company": _l("Set by your company"),
}


@dataclass
class ProfileField:
    form_name: str  # the input's name
    owner_name: str  # the name field ownership uses (``extra.<name>`` for unit fields)
    label: Any
    value: str
    required: bool
    max_length: int
    autocomplete: str | None
    manager: str | None  # who manages it when the employee may not edit it
    kind: str = "text"  # a unit field's type (idp.units.field_types)
    choices: tuple[str, ...] = ()
    hint: str | None = None
    definition: Any = None  # the unit field, to check a value against its type

    @property
    def editable(self) -> bool:
        return self.manager is None


def chosen_access(account_id: str, unit_id: str | None) -> Access | None:
    """The access whose employer facts the form shows: the account's granting access
    to ``unit_id``, else its first one (None without any)."""
    rows = accounts.accesses(account_id)
    return next((a for a in rows if a.unit_id == unit_id), rows[0] if rows else None)


def fields(account: Account, access: Access | None) -> list[ProfileField]:
    """Every profile field with its current value and whether the employee may edit
    it (and if not, a translated "managed by ..." text): the account's personal fields,
    then the employer facts of ``access`` (none without one; not those a unit field
    shadows, :func:`idp.login.profile_form.shadowed`), then the unit's own fields."""
    unit_fields = accounts.unit_fields(account.id, [access]) if access is not None else []
    extra_names = [f.name for f in unit_fields if not field_types.company_set(f)]
    editable = set(field_owners.employee_editable(account, access, extra_names))
    owned = {**field_owners.owners(account), **field_owners.owners(access)}
    result: list[ProfileField] = []
    hidden = shadowed([(name, label) for name, label, _r, _a in FACT_FIELDS], unit_fields)
    base = BASE_FIELDS + (FACT_FIELDS if access is not None else ())
    for name, label, required, autocomplete in base:
        if name in hidden:  # the unit's own field of that name or label stands for it
            continue
        row: Any = access if field_owners.is_fact(name) else account
        result.append(
            ProfileField(
                form_name=name,
                owner_name=name,
                label=label,
                value=str(getattr(row, name, None) or ""),
                required=required,
                max_length=field_owners.FIELD_LENGTHS[name],
                autocomplete=autocomplete,
                manager=None if name in editable else _manager(owned.get(name)),
            )
        )
    extra = (access.extra or {}) if access is not None else {}
    for unit_field in unit_fields:
        owner_name = field_owners.EXTRA_PREFIX + unit_field.name
        spec = unit_field_spec(unit_field, FORM_EXTRA_PREFIX + unit_field.name)
        owner = "company" if field_types.company_set(unit_field) else owned.get(owner_name)
        result.append(
            ProfileField(
                form_name=spec.name,
                owner_name=owner_name,
                label=spec.label,
                value=str(extra.get(unit_field.name) or ""),
                required=spec.required,
                max_length=UNIT_FIELD_MAX_LENGTH,
                autocomplete="off",
                manager=None if owner_name in editable else _manager(owner),
                kind=spec.kind,
                choices=spec.choices,
                hint=spec.hint,
                definition=unit_field,
            )
        )
    return result


def _manager(owner: str | None) -> str:
    return str(MANAGERS.get(owner or "", _l("Managed by your company")))


@dataclass
class Outcome:
    errors: dict[str, str]  # form name -> message key
    values: dict[str, str]  # the cleaned values typed, to show again
    notice: str | None  # message key when saved (or nothing changed)


def save(account: Account, form: MultiDict[str, str]) -> Outcome:
    """Validate the submitted editable fields on the server (required, length, no
    control characters) and save the changed ones with
    :func:`idp.accounts.lifecycle.employee_update`, audited as the employee. Read-only
    fields in ``form`` are ignored; nothing is written when any field is invalid."""
    access = chosen_access(account.id, form.get("unit_id"))
    editable = [f for f in fields(account, access) if f.editable]
    specs = [
        FieldSpec(f.form_name, f.label, f.required, f.max_length, f.autocomplete,
                  definition=f.definition)
        for f in editable
    ]
    _profile, errors, values = validate(form, specs)
    if errors:
        return Outcome(errors, values, None)
    changes = {
        f.owner_name: values[f.form_name] or None
        for f in editable
        if values[f.form_name] != f.value
    }
    if not changes:
        return Outcome({}, {}, "profile_unchanged")
    by_owner_name = {f.owner_name: f.form_name for f in editable}
    try:
        accounts.employee_update(
            account.id, changes, audit.account_actor(account.id),
            access.unit_id if access is not None else None,
        )
    except FieldOwned as exc:
        owned = str(exc).split(" ", 1)[0]
        return Outcome({by_owner_name.get(owned, "given_name"): "managed"}, values, None)
    except InvalidValue:
        return Outcome({f.form_name: "invalid_chars" for f in editable
                        if f.owner_name in changes}, values, None)
    except (Busy, NotFound):
        return Outcome({}, values, "busy")
    return Outcome({}, {}, "profile_saved")
