"""Which claims a SAML SP receives, and under which attribute names.

Claim names are the OIDC ones of ``idp.release.claims`` (so consent and the wallet work the
same for both protocols). Standard ones map to the urn:oid names of eduPerson /
inetOrgPerson (saml-profiles 8.2, "SAML V2.0 X.500/LDAP Attribute Profile") with
their LDAP names as ``FriendlyName``; Unitgate's own fields use
``urn:unitgate:attribute:<claim>``. Every attribute uses the URI ``NameFormat``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from idp.units.field_types import saml_value

UNITGATE_PREFIX = "urn:unitgate:attribute:"


@dataclass(frozen=True)
class AttributeName:
    """How one claim is named as a SAML attribute, and the scope that releases it."""

    claim: str
    name: str
    friendly_name: str
    scope: str


# ``wallet_fields`` (a unit's own fields, a mapping) becomes one attribute per field,
# named ``urn:unitgate:attribute:wallet:<field>`` with the field name as FriendlyName;
# a typed value in its string form (``idp.units.field_types.saml_value``): a number as
# written (``12.5``), money as amount, space, currency (``12.50 EUR``), a date in ISO
# 8601 (``2026-12-31``).
ATTRIBUTES: tuple[AttributeName, ...] = (
    AttributeName("email", "urn:oid:0.9.2342.19200300.100.1.3", "mail", "email"),
    AttributeName("given_name", "urn:oid:2.5.4.42", "givenName", "profile"),
    AttributeName("family_name", "urn:oid:2.5.4.4", "sn", "profile"),
    AttributeName("name", "urn:oid:2.16.840.1.113730.3.1.241", "displayName", "profile"),
    AttributeName("locale", "urn:oid:2.16.840.1.113730.3.1.39", "preferredLanguage", "profile"),
    AttributeName("phone_number", "urn:oid:2.5.4.20", "telephoneNumber", "phone"),
    AttributeName(
        "personnel_number", "urn:oid:2.16.840.1.113730.3.1.3", "employeeNumber", "wallet"
    ),
    AttributeName("cost_centre", UNITGATE_PREFIX + "cost_centre", "costCentre", "wallet"),
    AttributeName("wallet_fields", UNITGATE_PREFIX + "wallet:", "", "wallet"),
    AttributeName("org_id", UNITGATE_PREFIX + "org_id", "orgId", "org"),
    AttributeName("org_name", "urn:oid:2.5.4.10", "o", "org"),
    AttributeName("roles", UNITGATE_PREFIX + "roles", "roles", "org"),
)
BY_CLAIM = {a.claim: a for a in ATTRIBUTES}
DEFAULT_CLAIMS = [a.claim for a in ATTRIBUTES]


def claims_for_requested(requested: Iterable[str]) -> list[str]:
    """The claims whose attribute ``Name`` or ``FriendlyName`` is in ``requested``
    (an SP's ``RequestedAttribute`` list), in the canonical order."""
    wanted = {r.strip() for r in requested}
    return [
        a.claim
        for a in ATTRIBUTES
        if a.claim in wanted
        or a.name in wanted
        or (a.friendly_name and a.friendly_name in wanted)
        or (a.claim == "wallet_fields" and any(w.startswith(a.name) for w in wanted))
    ]


def scopes_for(claims: Iterable[str]) -> list[str]:
    """The scopes (consent groups) to ask for so that ``claims`` can be released;
    ``openid`` always, as for every OIDC sign-in."""
    scopes = ["openid"]
    for claim in claims:
        attr = BY_CLAIM.get(claim)
        if attr is not None and attr.scope not in scopes:
            scopes.append(attr.scope)
    return scopes


@dataclass(frozen=True)
class SamlAttribute:
    """One ``saml:Attribute`` with its string values."""

    name: str
    friendly_name: str
    values: tuple[str, ...]


def _values(value: Any) -> tuple[str, ...]:
    if value is None or value == "" or value == []:
        return ()
    if isinstance(value, bool):
        return ("true" if value else "false",)
    if isinstance(value, list | tuple | set):
        return tuple(str(v) for v in value if v is not None and v != "")
    return (saml_value(value),)


def to_attributes(claims: Mapping[str, Any], allowed: Iterable[str]) -> list[SamlAttribute]:
    """The SAML attributes for the ``allowed`` claims present in ``claims``; empty
    claims are left out. A claim without a standard name (a unit's own wallet field)
    is released as ``urn:unitgate:attribute:<claim>``."""
    result = []
    for claim in allowed:
        if claim == "wallet_fields":
            fields = claims.get(claim)
            for field, value in fields.items() if isinstance(fields, Mapping) else ():
                values = _values(value)
                if values:
                    result.append(SamlAttribute(UNITGATE_PREFIX + "wallet:" + field, field, values))
            continue
        values = _values(claims.get(claim))
        if not values:
            continue
        attr = BY_CLAIM.get(claim)
        if attr is None:
            result.append(SamlAttribute(UNITGATE_PREFIX + claim, claim, values))
        else:
            result.append(SamlAttribute(attr.name, attr.friendly_name, values))
    return result
