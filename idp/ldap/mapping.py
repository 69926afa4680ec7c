"""From LDAP entries to account fields and unit roles.

The attribute map says which LDAP attribute fills which account field
(``{"mail": "email", "givenName": "given_name", ...}``); each field is filled by at
most one attribute, and ``email`` must be mapped. The group map says which directory
groups give which unit role (``{"cn=buyers,ou=groups,dc=acme,dc=example": "buyer"}``);
a key is either a full group DN (compared case- and space-insensitively) or a bare
group CN (``"buyers"``). Groups come from the user's ``memberOf`` values, as AD and
OpenLDAP's memberof overlay provide them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from connectors.ldap import LdapEntry, entry_id, is_disabled
from idp.accounts.field_owners import (
    EXTRA_LENGTH,
    EXTRA_PREFIX,
    FIELD_LENGTHS,  # personal fields and facts LDAP can fill
)

EXTRA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
ROLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
ATTRIBUTE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,63}$|^[0-9]+(\.[0-9]+)+$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
MEMBER_OF = "memberOf"

DEFAULT_ATTRIBUTE_MAP: dict[str, str] = {
    "mail": "email",
    "givenName": "given_name",
    "sn": "family_name",
    "telephoneNumber": "phone_number",
    "employeeNumber": "personnel_number",
    "departmentNumber": "cost_centre",
    "department": "department",
    "preferredLanguage": "locale",
}


class MappingError(ValueError):
    """An attribute or group map that cannot be used; the message says why."""


def is_field(name: str) -> bool:
    """True for an account field LDAP may own: a core field or ``extra.<name>``."""
    if name in FIELD_LENGTHS:
        return True
    return name.startswith(EXTRA_PREFIX) and bool(EXTRA_NAME.match(name[len(EXTRA_PREFIX) :]))


def build_attribute_map(
    overrides: list[str] | None = None,
    unmap: list[str] | None = None,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """``base`` (default: :data:`DEFAULT_ATTRIBUTE_MAP`) with ``attr=field`` overrides.

    An override for a field replaces the attribute that filled it, and an attribute
    fills only the field it was last given; ``unmap`` drops fields. The result maps
    each field from exactly one attribute and maps ``email``.
    """
    by_field = {f: a for a, f in (base or DEFAULT_ATTRIBUTE_MAP).items()}
    for item in overrides or []:
        attr, sep, fld = item.partition("=")
        attr, fld = attr.strip(), fld.strip()
        if not sep or not attr or not fld:
            raise MappingError(f"--map {item!r}: expected ATTRIBUTE=FIELD")
        for other in [f for f, a in by_field.items() if a.lower() == attr.lower()]:
            del by_field[other]  # the attribute now fills this field instead
        by_field[fld] = attr
    for fld in unmap or []:
        by_field.pop(fld.strip(), None)
    result = {a: f for f, a in by_field.items()}
    return validate_attribute_map(result)


def validate_attribute_map(mapping: Any) -> dict[str, str]:
    """``mapping`` if it is a valid attribute map, else :class:`MappingError`."""
    if not isinstance(mapping, dict) or not mapping:
        raise MappingError("the attribute map must be a non-empty object")
    seen: dict[str, str] = {}
    seen_attrs: set[str] = set()
    for attr, fld in mapping.items():
        if not isinstance(attr, str) or not ATTRIBUTE.match(attr):
            raise MappingError(f"{attr!r} is not an LDAP attribute name")
        if not isinstance(fld, str) or not is_field(fld):
            allowed = ", ".join([*FIELD_LENGTHS, EXTRA_PREFIX + "<name>"])
            raise MappingError(f"{fld!r} is not an account field ({allowed})")
        if fld in seen:
            raise MappingError(f"field {fld!r} is mapped from both {seen[fld]!r} and {attr!r}")
        if attr.lower() in seen_attrs:
            raise MappingError(f"attribute {attr!r} is mapped twice")
        seen[fld] = attr
        seen_attrs.add(attr.lower())
    if "email" not in seen:
        raise MappingError("the attribute map must map an attribute to 'email'")
    return dict(mapping)


def build_group_map(items: list[str] | None) -> dict[str, str]:
    """A group map from ``GROUP=ROLE`` items (GROUP: a DN or a bare CN)."""
    mapping: dict[str, str] = {}
    for item in items or []:
        group, sep, role = item.rpartition("=")
        group, role = group.strip(), role.strip()
        if not sep or not group or not role:
            raise MappingError(f"--group-map {item!r}: expected GROUP=ROLE")
        mapping[group] = role
    return validate_group_map(mapping)


def validate_group_map(mapping: Any) -> dict[str, str]:
    """``mapping`` if it is a valid group map, else :class:`MappingError`."""
    if not isinstance(mapping, dict):
        raise MappingError("the group map must be an object")
    for group, role in mapping.items():
        if not isinstance(group, str) or not group.strip() or len(group) > 1000:
            raise MappingError(f"{group!r} is not a group DN or CN")
        if not isinstance(role, str) or not ROLE.match(role):
            raise MappingError(f"{role!r} is not a role name (letters, digits, _ . : -)")
    return dict(mapping)


def normalise_dn(dn: str) -> str:
    """A DN compared loosely: lower case, no spaces around ``,`` and ``=``."""
    parts = []
    for rdn in dn.split(","):
        attr, _, value = rdn.partition("=")
        parts.append(f"{attr.strip().lower()}={value.strip().lower()}")
    return ",".join(parts)


def group_cn(dn: str) -> str | None:
    """The value of a group DN's first RDN when it is a CN, lower-cased."""
    first = dn.split(",", 1)[0]
    attr, _, value = first.partition("=")
    return value.strip().lower() if attr.strip().lower() == "cn" else None


def roles_for(group_dns: list[str], group_map: dict[str, str]) -> list[str]:
    """The sorted unit roles ``group_map`` gives a member of ``group_dns``."""
    by_dn = {normalise_dn(k): v for k, v in group_map.items() if "=" in k}
    by_cn = {k.strip().lower(): v for k, v in group_map.items() if "=" not in k}
    roles: set[str] = set()
    for dn in group_dns:
        text = dn.decode() if isinstance(dn, bytes) else str(dn)
        role = by_dn.get(normalise_dn(text))
        if role is None:
            cn = group_cn(text)
            role = by_cn.get(cn) if cn else None
        if role:
            roles.add(role)
    return sorted(roles)


@dataclass
class MappedEntry:
    """An LDAP user entry expressed in Unitgate's terms."""

    external_id: str
    dn: str
    disabled: bool
    values: dict[str, str | None]  # field -> value (None: attribute absent)
    roles: list[str] = field(default_factory=list)

    @property
    def email(self) -> str:
        return self.values.get("email") or ""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    text = str(value).strip()
    return text or None


def map_entry(
    entry: LdapEntry,
    attribute_map: dict[str, str],
    group_map: dict[str, str],
    id_attribute: str,
) -> MappedEntry:
    """The entry's external id, state, field values and roles.

    Raises :class:`MappingError` (with the DN) when the entry has no stable id, no
    usable e-mail address, or a value too long for its field.
    """
    ext = entry_id(entry, id_attribute)
    if not ext or len(ext) > 200:
        raise MappingError(f"{entry.dn}: no usable {id_attribute} id")
    values: dict[str, str | None] = {}
    for attr, fld in attribute_map.items():
        text = _text(entry.first(attr))
        limit = FIELD_LENGTHS.get(fld, EXTRA_LENGTH)
        if text is not None and len(text) > limit:
            raise MappingError(f"{entry.dn}: {attr} longer than {limit} characters")
        values[fld] = text
    email = (values.get("email") or "").lower()
    if not EMAIL.match(email):
        raise MappingError(f"{entry.dn}: no valid e-mail address in the mapped attribute")
    values["email"] = email
    roles = roles_for(entry.values(MEMBER_OF), group_map) if group_map else []
    return MappedEntry(ext, entry.dn, is_disabled(entry), values, roles)


def search_attributes(attribute_map: dict[str, str], id_attribute: str) -> list[str]:
    """The attributes a sync must request: mapped ones, the id, state and groups."""
    from connectors.ldap import AUTO_ID, AUTO_ID_ATTRIBUTES, USER_ACCOUNT_CONTROL

    ids = list(AUTO_ID_ATTRIBUTES) if id_attribute == AUTO_ID else [id_attribute]
    wanted = [*attribute_map, *ids, USER_ACCOUNT_CONTROL, MEMBER_OF]
    out: list[str] = []
    for name in wanted:
        if name.lower() not in (o.lower() for o in out):
            out.append(name)
    return out
