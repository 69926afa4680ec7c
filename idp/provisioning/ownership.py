"""What a unit's provisioning may reach: the one home of the ownership rules.

SCIM, the LDAP sync and federation's just-in-time creation all ask here before they
bind an address to an account, create an account for an address, or give an account
a new address. The rules (``docs/security.md``, "Provisioning reaches only what it
owns"):

* An address has a *standing* towards a unit (:func:`standing`):

  - ``OWN``: it lies in a domain that the unit, or a unit above it in its tree,
    verified and whose verification is still in force (:func:`idp.domains.registry.is_effective`);
  - ``FOREIGN``: it lies in a domain in force for a unit of another tree;
  - ``OPEN``: no domain in force covers it (consumer mail, unverified company domains).

  The claims come from the per-process domain cache (:mod:`idp.domains.lookup`, at
  most 2 s old on other nodes, current on the node that changed them).

* A unit may create or bind an account, or rename one, only for an ``OWN`` address.
  A ``FOREIGN`` address is refused outright (no unit can squat another company's
  domain). An ``OPEN`` address gives a *pending* record, bound to nobody, until its
  holder proves the mailbox and agrees to join (:mod:`idp.accounts.invitations`).
* Even for an ``OWN`` address, an existing account is bound only when no other unit
  reaches it (:func:`bindable`): no membership elsewhere, no other directory record or
  link, not deprovisioned.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from idp.domains import lookup as domain_lookup
from idp.domains import registry as domains
from idp.store import ownership_repo
from idp.store.models import Account, AccountStatus
from idp.units import registry as units


class Standing(StrEnum):
    """How an e-mail address relates to a provisioning unit."""

    OWN = "own"
    FOREIGN = "foreign"
    OPEN = "open"


def tree_of(unit_id: str) -> set[str]:
    """The unit and every unit above it: whose verified domains count as its own."""
    unit = units.find(unit_id)
    if unit is None:
        return {unit_id}
    return {unit_id, *(u.id for u in units.ancestors(unit))}


def standing(unit_id: str, email: str, now: datetime | None = None) -> Standing:
    """The standing of ``email`` towards ``unit_id`` (see the module docstring)."""
    name = domains.email_domain(email)
    if name is None:
        return Standing.OPEN
    effective = domain_lookup.match(name, now).effective
    if effective is None:
        return Standing.OPEN
    if effective.unit_id == unit_id or effective.unit_id in tree_of(unit_id):
        return Standing.OWN
    return Standing.FOREIGN


def domain_standing(unit_id: str, name: str, now: datetime | None = None) -> Standing:
    """The standing of the e-mail domain ``name`` (a Google Workspace ``hd``, say)
    towards ``unit_id``: that of every address in it (:func:`standing`)."""
    return standing(unit_id, f"postmaster@{name}", now)


def bindable(unit_id: str, account: Account) -> bool:
    """Whether ``unit_id``'s provisioning may take over the existing ``account`` (whose
    address is already known to be ``OWN``): only when nothing of another unit reaches
    it and it was not deprovisioned."""
    if account.status == AccountStatus.DELETED:
        return False
    return not ownership_repo.reached_by_others(account.id, unit_id)


class AddressRefused(ValueError):
    """An address a unit may not give an account; ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


FOREIGN_MESSAGE = "the address lies in a domain another company verified"
NOT_OWN_MESSAGE = (
    "an account's address can only change to one in a domain this unit verified"
)


def check_new_address(unit_id: str, email: str) -> Standing:
    """The standing of an address a unit gives a record; refuses ``FOREIGN`` ones."""
    found = standing(unit_id, email)
    if found is Standing.FOREIGN:
        raise AddressRefused("foreign_domain", FOREIGN_MESSAGE)
    return found
