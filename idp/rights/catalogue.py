"""The permission catalogue and the built-in roles, as data.

A *permission* is a named right over a unit (and, by inheritance, its sub-units):
:data:`PERMISSIONS` maps each name to what it allows. Names outside the catalogue
are refused wherever names are accepted (:func:`validate`) and are a programming
error when asked about (:func:`idp.rights.authorization.may`).

The built-in roles (:data:`idp.units.registry.BASE_ROLES`) are predefined permission groups
(:data:`BUILT_IN`); a unit adds its own groups (``idp.rights.groups``). The table
is in ``docs/architecture.md`` ("Rights").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from idp.rights.errors import RightsError

PERMISSIONS: dict[str, str] = {
    "users.read": "See the unit's people, their accesses and roles.",
    "users.manage": "Invite, change, suspend and remove the unit's people and their roles.",
    "units.manage": "Change the unit, create and move its sub-units, define permission groups.",
    "domains.manage": "Add, verify and remove the unit's e-mail domains and their join rules.",
    "connectors.manage": "Configure the unit's sign-in connectors (OIDC, SAML, Microsoft, Google).",
    "scim.manage": "Issue and revoke the unit's SCIM tokens and group-role rules.",
    "ldap.manage": "Configure the unit's LDAP directory and its synchronisation.",
    "budgets.manage": "Set and change the unit's budgets.",
    "approvals.decide": "Approve or reject the unit's orders awaiting approval.",
    "orders.create": "Place orders at merchants on the unit's account.",
    "documents.read": "Read the unit's invoices, delivery notes and other documents.",
    "audit.read": "Read the unit's audit log.",
    "webhooks.manage": "Configure the unit's webhooks.",
    "exports.read": "Export the unit's data.",
    "impersonate": "Act as one of the unit's people (never one with more rights).",
}

ALL: frozenset[str] = frozenset(PERMISSIONS)

# Granted only explicitly (a custom group, a staff assignment): a unit's main users do
# not act as their colleagues unless the operator's staff enables it for them.
EXPLICIT_ONLY: frozenset[str] = frozenset({"impersonate"})

ADMINISTRATION: frozenset[str] = ALL - EXPLICIT_ONLY

BUILT_IN: dict[str, frozenset[str]] = {
    "main_user": ADMINISTRATION,
    "commercial_contact": frozenset(
        {"users.read", "budgets.manage", "approvals.decide", "orders.create",
         "documents.read", "exports.read"}
    ),
    "operational_contact": frozenset({"users.read", "orders.create", "documents.read"}),
    "employee": frozenset({"orders.create"}),
}


class UnknownPermission(RightsError):
    """A permission name outside the catalogue (code ``unknown_permission``)."""

    def __init__(self, name: object) -> None:
        super().__init__(
            "unknown_permission",
            f"unknown permission {name!r}; one of " + ", ".join(sorted(ALL)),
        )
        self.name = name


def validate(names: Iterable[Any]) -> list[str]:
    """``names`` deduplicated and sorted, each a catalogue permission; else
    :class:`UnknownPermission` for the first unknown one."""
    out: set[str] = set()
    for name in names:
        if not isinstance(name, str) or name not in PERMISSIONS:
            raise UnknownPermission(name)
        out.add(name)
    return sorted(out)


def describe() -> list[dict[str, Any]]:
    """The catalogue as plain data: name, description and the built-in roles granting it."""
    return [
        {
            "name": name,
            "description": text,
            "roles": [role for role, granted in BUILT_IN.items() if name in granted],
        }
        for name, text in sorted(PERMISSIONS.items())
    ]
