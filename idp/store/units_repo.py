"""Repository of business units, their profile fields and memberships.

Writes are staged (:func:`stage`, :func:`delete`; accesses: ``idp.store.accesses_repo``); the
calling service commits them with the change's audit event (:func:`idp.audit.event`)
in one :func:`idp.store.unit_of_work.atomic` block, rolled back on any error, so a
failed change leaves nothing half-written.
"""

from __future__ import annotations

from sqlalchemy import func, select

from idp.store.db import db
from idp.store.models import Access, Account, Unit, UnitProfileField
from idp.store.unit_of_work import Conflict as Conflict


def by_id(unit_id: str) -> Unit | None:
    """The unit with this id, or None (also for malformed ids)."""
    if not unit_id or len(unit_id) > 32:
        return None
    return db.session.get(Unit, unit_id)


def by_slug(slug: str) -> Unit | None:
    """The unit with this slug, or None."""
    if not slug or len(slug) > 100:
        return None
    return db.session.scalars(select(Unit).where(Unit.slug == slug)).first()


def all_units() -> list[Unit]:
    """Every unit, ordered by slug."""
    return list(db.session.scalars(select(Unit).order_by(Unit.slug)))


def children(unit_id: str) -> list[Unit]:
    """The direct sub-units of ``unit_id``."""
    return list(db.session.scalars(select(Unit).where(Unit.parent_id == unit_id)))


def slugs_like(prefix: str) -> set[str]:
    """Slugs equal to ``prefix`` or starting with ``prefix-`` (to pick a free one)."""
    rows = db.session.scalars(
        select(Unit.slug).where(
            (Unit.slug == prefix) | Unit.slug.startswith(prefix + "-", autoescape=True)
        )
    )
    return set(rows)


def member_count(unit_id: str) -> int:
    """How many accounts belong to the unit."""
    return int(
        db.session.scalar(
            select(func.count()).select_from(Access).where(Access.unit_id == unit_id)
        )
        or 0
    )


def roles_held(unit_id: str) -> set[str]:
    """Every role some member holds in the unit."""
    out: set[str] = set()
    for roles in db.session.scalars(select(Access.roles).where(Access.unit_id == unit_id)):
        out.update(roles or [])
    return out


def field(unit_id: str, name: str) -> UnitProfileField | None:
    """The unit's profile field called ``name``, or None."""
    return db.session.scalars(
        select(UnitProfileField).where(
            UnitProfileField.unit_id == unit_id, UnitProfileField.name == name
        )
    ).first()


def fields(unit_id: str) -> list[UnitProfileField]:
    """The unit's profile fields in display order."""
    return list(
        db.session.scalars(
            select(UnitProfileField)
            .where(UnitProfileField.unit_id == unit_id)
            .order_by(UnitProfileField.position, UnitProfileField.name)
        )
    )


def account(account_id: str) -> Account | None:
    """The account with this id, or None."""
    return db.session.get(Account, account_id) if account_id else None


def stage(*rows: object) -> None:
    """Add ``rows`` (new or changed, with their audit events) to the current
    transaction."""
    db.session.add_all(rows)


def delete(row: object, *staged: object) -> None:
    """Stage the deletion of ``row`` (its dependants cascade) with ``staged`` rows
    (its audit event)."""
    db.session.add_all(staged)
    db.session.delete(row)
