"""The "Your profile" form of the dashboard.

Every profile field is shown; the ones the employee may edit
(:func:`idp.field_owners.employee_editable`) as inputs, the ones an HR system,
directory or SSO owns read-only with who manages them. Saving goes through
:func:`idp.accounts.employee_update`, which re-checks ownership in the same
transaction, so a field that HR took over meanwhile is refused, never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from idp import accounts, audit, field_owners
from idp.login.profile_form import FieldSpec, validate
from idp.provisioning_errors import Busy, FieldOwned, InvalidValue, NotFound
from idp.store.models import Account, UnitProfileField

# (attribute name, label, required, autocomplete) of the account's own profile columns
# that the dashboard offers; e-mail is shown in the header, not here.
BASE_FIELDS: tuple[tuple[str, Any, bool, str | None], ...] = (
    ("given_name", _l("Given name"), True, "given-name"),
    ("family_name", _l("Family name"), True, "family-name"),
    ("phone_number", _l("Phone number"), False, "tel"),
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

    @property
    def editable(self) -> bool:
        return self.manager is None


def fields(account: Account, unit_fields: list[UnitProfileField]) -> list[ProfileField]:
    """Every profile field of ``account`` with its current value and whether the
    employee may edit it (and if not, a translated "managed by ..." text)."""
    extra_names = [f.name for f in unit_fields]
    editable = set(field_owners.employee_editable(account, extra_names))
    owned = field_owners.owners(account)
    result: list[ProfileField] = []
    for name, label, required, autocomplete in BASE_FIELDS:
        result.append(
            ProfileField(
                form_name=name,
                owner_name=name,
                label=label,
                value=str(getattr(account, name, None) or ""),
                required=required,
                max_length=field_owners.PROFILE_FIELDS[name],
                autocomplete=autocomplete,
                manager=None if name in editable else _manager(owned.get(name)),
            )
        )
    extra = account.extra or {}
    for unit_field in unit_fields:
        owner_name = field_owners.EXTRA_PREFIX + unit_field.name
        result.append(
            ProfileField(
                form_name=FORM_EXTRA_PREFIX + unit_field.name,
                owner_name=owner_name,
                label=unit_field.label,
                value=str(extra.get(unit_field.name) or ""),
                required=bool(unit_field.required),
                max_length=UNIT_FIELD_MAX_LENGTH,
                autocomplete="off",
                manager=None if owner_name in editable else _manager(owned.get(owner_name)),
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
    :func:`idp.accounts.employee_update`, audited as the employee. Read-only
    fields in ``form`` are ignored; nothing is written when any field is invalid."""
    unit_fields = accounts.unit_fields(account.id)
    editable = [f for f in fields(account, unit_fields) if f.editable]
    specs = [
        FieldSpec(f.form_name, f.label, f.required, f.max_length, f.autocomplete)
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
        accounts.employee_update(account.id, changes, audit.account_actor(account.id))
    except FieldOwned as exc:
        owned = str(exc).split(" ", 1)[0]
        return Outcome({by_owner_name.get(owned, "given_name"): "managed"}, values, None)
    except InvalidValue:
        return Outcome({f.form_name: "invalid_chars" for f in editable
                        if f.owner_name in changes}, values, None)
    except (Busy, NotFound):
        return Outcome({}, values, "busy")
    return Outcome({}, {}, "profile_saved")
