"""Per-connector attribute mapping: upstream claims (or SAML attributes) to account
fields and unit roles.

A connector's settings may hold::

    "mapping":  {"personnel_number": "employeeId", "cost_centre": "costCenter",
                 "department": "department", "groups": "groups"},
    "role_map": {"Purchasing": "buyer", "Finance-Approvers": "approver"},
    "default_roles": ["employee"]

``mapping`` names, per account field, the claim to read (a string or a list of
names tried in order); unnamed fields fall back to :data:`DEFAULT_MAPPING`, which
knows the usual OIDC claim names, Entra/Okta names and the SAML attribute URIs.
The source *owns* the fields it asserts: later sign-ins overwrite exactly those and
leave the others alone. ``role_map`` turns upstream groups into unit roles; the
source owns the roles named in ``role_map`` (they are added and removed to follow
the groups) and never touches roles an admin gave by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors import ConfigurationError

ACCOUNT_FIELDS = (
    "given_name",
    "family_name",
    "phone_number",
    "locale",
    "personnel_number",
    "cost_centre",
    "department",
)
MAX_VALUE_LENGTH = 100
MAX_GROUPS = 500

DEFAULT_MAPPING: dict[str, list[str]] = {
    "given_name": [
        "given_name",
        "givenName",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
        "urn:oid:2.5.4.42",
    ],
    "family_name": [
        "family_name",
        "surname",
        "sn",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
        "urn:oid:2.5.4.4",
    ],
    "phone_number": ["phone_number", "telephoneNumber", "urn:oid:2.5.4.20"],
    "locale": ["locale", "preferredLanguage"],
    "personnel_number": ["employeeId", "employee_id", "employeeNumber",
                         "urn:oid:2.16.840.1.113730.3.1.3"],
    "cost_centre": ["costCenter", "cost_center", "costCentre"],
    "department": ["department", "urn:oid:2.5.4.11"],
    "groups": ["groups", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
               "memberOf"],
}


@dataclass(frozen=True)
class AttributeMapping:
    """The validated mapping of one connector."""

    fields: dict[str, list[str]]
    role_map: dict[str, str] = field(default_factory=dict)
    default_roles: list[str] = field(default_factory=list)

    @property
    def owned_roles(self) -> set[str]:
        """The roles this source adds and removes (the values of ``role_map``)."""
        return set(self.role_map.values())


@dataclass(frozen=True)
class MappedProfile:
    """What one sign-in asserts: account field values and the unit roles."""

    fields: dict[str, str]
    roles: list[str]
    owned_roles: set[str]


def from_settings(settings: Mapping[str, Any]) -> AttributeMapping:
    """The mapping in a connector's settings; ConfigurationError when malformed."""
    raw = settings.get("mapping") or {}
    if not isinstance(raw, dict):
        raise ConfigurationError("mapping must be an object of field -> claim name(s)")
    fields = {name: list(names) for name, names in DEFAULT_MAPPING.items()}
    for name, names in raw.items():
        if name not in (*ACCOUNT_FIELDS, "groups"):
            raise ConfigurationError(
                f"unknown mapped field {name!r}; one of {', '.join((*ACCOUNT_FIELDS, 'groups'))}"
            )
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigurationError(f"mapping for {name!r} must be a claim name or a list")
        fields[name] = list(names)
    role_map = settings.get("role_map") or {}
    defaults = settings.get("default_roles") or []
    if not isinstance(role_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in role_map.items()
    ):
        raise ConfigurationError("role_map must map group names to role names")
    if not isinstance(defaults, list) or not all(isinstance(r, str) for r in defaults):
        raise ConfigurationError("default_roles must be a list of role names")
    return AttributeMapping(fields=fields, role_map=dict(role_map), default_roles=list(defaults))


def _first_value(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        text = str(value).strip()
        return text[:MAX_VALUE_LENGTH] if text else None
    return None


def _groups(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [g for g in value[:MAX_GROUPS] if isinstance(g, str)]


def apply(mapping: AttributeMapping, claims: Mapping[str, Any]) -> MappedProfile:
    """The account fields and roles ``claims`` assert under ``mapping``.

    A field is present in the result only when the upstream sent a usable value
    for it, so a missing claim never blanks a field.
    """
    values: dict[str, str] = {}
    for name in ACCOUNT_FIELDS:
        for claim in mapping.fields.get(name, []):
            value = _first_value(claims.get(claim))
            if value is not None:
                values[name] = value
                break
    groups: list[str] = []
    for claim in mapping.fields.get("groups", []):
        groups = _groups(claims.get(claim))
        if groups:
            break
    roles = list(dict.fromkeys(
        [*mapping.default_roles, *(mapping.role_map[g] for g in groups if g in mapping.role_map)]
    ))
    return MappedProfile(fields=values, roles=roles, owned_roles=mapping.owned_roles)
