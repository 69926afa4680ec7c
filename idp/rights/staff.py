"""The platform operator's staff and the customers they look after.

A staff member is an existing account marked as the operator's (``staff_members``).
Assigned to a customer (a top-level unit) as ``administrator`` they hold every
permission there and in all its sub-units; as ``processor`` only the named ones
(:mod:`idp.rights.authorization`). Every change is validated first and written in
one transaction with its audit event (:func:`idp.audit.record`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from idp import audit
from idp.accounts import lifecycle as accounts
from idp.rights import catalogue
from idp.rights.authorization import ADMINISTRATOR, PROCESSOR
from idp.rights.errors import RightsError
from idp.store import rights_repo
from idp.store.models import Account, StaffAssignment, StaffMember, Unit
from idp.store.unit_of_work import atomic
from idp.units import registry as units

KINDS: tuple[str, ...] = (ADMINISTRATOR, PROCESSOR)


def _account(email: str) -> Account:
    try:
        found = accounts.by_email(accounts.normalise_email(email))
    except accounts.InvalidEmail:
        found = None
    if found is None:
        raise RightsError("not_found", f"no account {email!r}")
    return found


def _staff(email: str) -> tuple[Account, StaffMember]:
    account = _account(email)
    member = rights_repo.staff_member(account.id)
    if member is None:
        raise RightsError("not_staff", f"{account.email or account.id} is not a staff member")
    return account, member


def _customer(ref: str) -> Unit:
    try:
        unit = units.get(ref)
    except units.UnitError as exc:
        raise RightsError(exc.code, str(exc)) from exc
    if unit.parent_id is not None:
        raise RightsError(
            "not_a_customer", f"unit {unit.slug!r} is a sub-unit; assign staff to its customer"
        )
    return unit


def add(email: str, actor: str = "system") -> StaffMember:
    """Make the account of ``email`` a staff member (no customer yet); idempotent."""
    account = _account(email)
    existing = rights_repo.staff_member(account.id)
    if existing is not None:
        return existing
    row = StaffMember(account_id=account.id, added_by=actor[:200])
    audit.record(actor, "staff.add", account.id)
    try:
        with atomic():
            rights_repo.stage(row)
    except rights_repo.Conflict:
        found = rights_repo.staff_member(account.id)
        if found is None:
            raise
        return found
    return row


def remove(email: str, actor: str = "system") -> None:
    """End the account's staff membership with all its assignments."""
    account, member = _staff(email)
    assigned = rights_repo.assignments_of(account.id)
    audit.record(actor, "staff.remove", account.id, {"assignments": len(assigned)})
    with atomic():
        rights_repo.delete(*assigned, member)


def assign(
    email: str,
    customer: str,
    kind: str,
    permissions: Iterable[Any] = (),
    actor: str = "system",
) -> StaffAssignment:
    """Assign a staff member to a customer (a top-level unit) as ``administrator``
    (no permission list: everything) or ``processor`` (at least one catalogue
    permission); replaces an earlier assignment to the same customer."""
    account, _member = _staff(email)
    unit = _customer(customer)
    if kind not in KINDS:
        raise RightsError("invalid_assignment", f"as: one of {', '.join(KINDS)}")
    granted = catalogue.validate(permissions)
    if kind == ADMINISTRATOR and granted:
        raise RightsError(
            "invalid_assignment", "an administrator holds every permission; name none"
        )
    if kind == PROCESSOR and not granted:
        raise RightsError("invalid_assignment", "a processor needs at least one --permission")
    row = rights_repo.assignment(account.id, unit.id)
    if row is not None and row.kind == kind and sorted(row.permissions or []) == granted:
        return row
    action = "staff.assign" if row is None else "staff.reassign"
    if row is None:
        row = StaffAssignment(account_id=account.id, unit_id=unit.id, created_by=actor[:200])
    row.kind = kind
    row.permissions = granted
    audit.record(actor, action, f"{account.id}@{unit.slug}", {"as": kind, "permissions": granted})
    try:
        with atomic():
            rights_repo.stage(row)
    except rights_repo.Conflict as exc:
        raise RightsError("conflict", "assigned concurrently; try again") from exc
    return row


def unassign(email: str, customer: str, actor: audit.Actor | str = "system") -> None:
    """End the staff member's assignment to the customer; ``not_found`` if none."""
    account, _member = _staff(email)
    unit = _customer(customer)
    with atomic():
        if not stage_unassign(account.id, unit.id, actor):
            who = account.email or account.id
            raise RightsError("not_found", f"{who} is not assigned to {unit.slug!r}")


def stage_unassign(account_id: str, unit_id: str, actor: audit.Actor | str = "system") -> bool:
    """Stage the end of the account's assignment to the customer ``unit_id`` with its
    audit event, in the caller's transaction (a removal of several authorisations at
    once); False when there is no such assignment."""
    row = rights_repo.assignment(account_id, unit_id)
    if row is None:
        return False
    unit = units.find(unit_id)
    audit.record(actor, "staff.unassign", f"{account_id}@{unit.slug if unit else unit_id}",
                 unit_id=unit_id)
    rights_repo.delete(row)
    return True


def is_assigned(account_id: str, unit_id: str) -> bool:
    """Whether the staff member ``account_id`` is assigned to the customer ``unit_id``."""
    return rights_repo.assignment(account_id, unit_id) is not None


def email_of(account_id: str) -> str | None:
    """The e-mail address of the staff member ``account_id`` (None: not staff)."""
    if rights_repo.staff_member(account_id) is None:
        return None
    account = rights_repo.account(account_id)
    return account.email if account is not None else None


def describe_all() -> list[dict[str, Any]]:
    """Every staff member with their assignments, as plain data."""
    out: list[dict[str, Any]] = []
    for member, account in rights_repo.staff_members():
        rows = []
        for row in rights_repo.assignments_of(account.id):
            unit = units.find(row.unit_id)
            rows.append({
                "customer_id": row.unit_id,
                "customer": unit.slug if unit else row.unit_id,
                "as": row.kind,
                "kind": row.kind,
                "permissions": list(row.permissions or []),
            })
        out.append({
            "account_id": account.id,
            "email": account.email,
            "name": account.name,
            "added_at": member.added_at.isoformat() if member.added_at else None,
            "added_by": member.added_by,
            "assignments": sorted(rows, key=lambda r: r["customer"]),
        })
    return out
