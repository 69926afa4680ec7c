"""Repository of rights: units' custom permission groups, operator staff and their
assignments to customers, and the few reads the authorisation function needs.

Writes are staged (:func:`stage`, :func:`delete`); the calling service commits them
with the change's audit event (:func:`idp.store.unit_of_work.atomic`). The reads for
one authorisation decision are a bounded number of queries whatever the depth of the unit tree.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import literal, select

from idp.store.db import db
from idp.store.models import (
    Account,
    AdminClient,
    PermissionGroup,
    StaffAssignment,
    StaffMember,
    Unit,
)
from idp.store.unit_of_work import Conflict as Conflict

MAX_CHAIN = 16


def group_names(unit_id: str) -> list[str]:
    """The names of the unit's custom permission groups, sorted."""
    return list(
        db.session.scalars(
            select(PermissionGroup.name)
            .where(PermissionGroup.unit_id == unit_id)
            .order_by(PermissionGroup.name)
        )
    )


def groups(unit_id: str) -> list[PermissionGroup]:
    """The unit's custom permission groups, sorted by name."""
    return list(
        db.session.scalars(
            select(PermissionGroup)
            .where(PermissionGroup.unit_id == unit_id)
            .order_by(PermissionGroup.name)
        )
    )


def group(unit_id: str, name: str) -> PermissionGroup | None:
    """The unit's custom permission group called ``name``, or None."""
    return db.session.scalars(
        select(PermissionGroup).where(
            PermissionGroup.unit_id == unit_id, PermissionGroup.name == name
        )
    ).first()


def groups_named(unit_ids: Iterable[str], names: Iterable[str]) -> list[PermissionGroup]:
    """Every group of any of ``unit_ids`` whose name is one of ``names`` (one query)."""
    ids, wanted = list(unit_ids), list(names)
    if not ids or not wanted:
        return []
    return list(
        db.session.scalars(
            select(PermissionGroup).where(
                PermissionGroup.unit_id.in_(ids), PermissionGroup.name.in_(wanted)
            )
        )
    )


def chain_ids(unit_id: str) -> list[str]:
    """``unit_id`` followed by its ancestors' ids, nearest first, in one recursive
    query; empty when the unit does not exist. Stops after :data:`MAX_CHAIN` levels
    (units nest at most ten, see :data:`idp.units.registry.MAX_DEPTH`)."""
    if not unit_id or len(unit_id) > 32:
        return []
    base = select(Unit.id, Unit.parent_id, literal(0).label("depth")).where(Unit.id == unit_id)
    chain = base.cte("chain", recursive=True)
    parent = select(Unit.id, Unit.parent_id, (chain.c.depth + 1).label("depth")).where(
        Unit.id == chain.c.parent_id, chain.c.depth < MAX_CHAIN
    )
    chain = chain.union(parent)
    rows = db.session.execute(select(chain.c.id, chain.c.depth).order_by(chain.c.depth)).all()
    out: list[str] = []
    for row in rows:
        if row.id not in out:
            out.append(row.id)
    return out


def admin_client(client_id: str) -> AdminClient | None:
    """The administration API registration of ``client_id``, or None."""
    if not client_id or len(client_id) > 64:
        return None
    return db.session.get(AdminClient, client_id)


def admin_clients() -> list[AdminClient]:
    """Every administration API client, oldest first."""
    return list(db.session.scalars(select(AdminClient).order_by(AdminClient.created_at)))


def account(account_id: str) -> Account | None:
    """The account with this id, or None."""
    return db.session.get(Account, account_id) if account_id else None


def staff_member(account_id: str) -> StaffMember | None:
    """The staff record of the account, or None."""
    return db.session.get(StaffMember, account_id) if account_id else None


def staff_members() -> list[tuple[StaffMember, Account]]:
    """Every staff member with their account, by e-mail address."""
    rows = db.session.execute(
        select(StaffMember, Account)
        .join(Account, Account.id == StaffMember.account_id)
        .order_by(Account.email)
    ).all()
    return [(row[0], row[1]) for row in rows]


def assignment(account_id: str, unit_id: str) -> StaffAssignment | None:
    """The staff member's assignment to the customer ``unit_id``, or None."""
    return db.session.scalars(
        select(StaffAssignment).where(
            StaffAssignment.account_id == account_id, StaffAssignment.unit_id == unit_id
        )
    ).first()


def assignments_of(account_id: str) -> list[StaffAssignment]:
    """Every assignment of the staff member."""
    return list(
        db.session.scalars(select(StaffAssignment).where(StaffAssignment.account_id == account_id))
    )


def assignments_in(account_id: str, unit_ids: Iterable[str]) -> list[StaffAssignment]:
    """The staff member's assignments to any of ``unit_ids`` (one query)."""
    ids = list(unit_ids)
    if not ids:
        return []
    return list(
        db.session.scalars(
            select(StaffAssignment).where(
                StaffAssignment.account_id == account_id, StaffAssignment.unit_id.in_(ids)
            )
        )
    )


def stage(*rows: object) -> None:
    """Add ``rows`` (new or changed) to the current transaction."""
    db.session.add_all(rows)


def delete(*rows: object) -> None:
    """Stage the deletion of ``rows``."""
    for row in rows:
        db.session.delete(row)


def flush() -> None:
    """Send what is staged so far (rows that later rows reference by foreign key
    without an ORM relationship), without committing."""
    db.session.flush()
