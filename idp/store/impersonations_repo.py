"""Repository of impersonations (``idp.interaction.impersonation``). Writes are
staged; the caller commits (:func:`idp.store.unit_of_work.atomic`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import joinedload

from idp.store.db import db, rowcount
from idp.store.models import Access, Grant, Impersonation, Session, Unit, utcnow


def insert(row: Impersonation) -> None:
    db.session.add(row)


def get(impersonation_id: str) -> Impersonation | None:
    return db.session.get(Impersonation, impersonation_id)


def by_session(session_hash: str) -> Impersonation | None:
    """The impersonation (live or ended) whose acting session has this hash."""
    return db.session.scalars(
        select(Impersonation).where(Impersonation.session_hash == session_hash).limit(1)
    ).first()


def mark_ended(row: Impersonation, at: datetime, reason: str) -> bool:
    """Stage the end of ``row`` unless it ended already; True when this call ended it
    (a conditional UPDATE, so two parallel ends write one end event)."""
    result = db.session.execute(
        update(Impersonation)
        .where(Impersonation.id == row.id, Impersonation.ended_at.is_(None))
        .values(ended_at=at, end_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        return False
    row.ended_at, row.end_reason = at, reason
    return True


def revoke_grants(impersonation_id: str) -> int:
    """Stage the revocation of every live grant issued during the impersonation."""
    result = db.session.execute(
        update(Grant)
        .where(Grant.impersonation_id == impersonation_id, Grant.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return rowcount(result)


def rekey_session(row: Session, new_hash: str, at: datetime) -> Session:
    """Give the actor's own session a new id (returned to after an impersonation):
    a new row with the same login, the old one removed (the primary key changes)."""
    fresh = Session(
        id_hash=new_hash, account_id=row.account_id, auth_time=row.auth_time,
        amr=list(row.amr or []), acr=row.acr, created_at=row.created_at,
        last_seen_at=at, expires_at=row.expires_at,
    )
    db.session.delete(row)
    db.session.add(fresh)
    return fresh


def for_target(account_id: str, limit: int) -> list[Impersonation]:
    """The newest ``limit`` impersonations of ``account_id``."""
    return list(db.session.scalars(
        select(Impersonation)
        .where(Impersonation.target_account_id == account_id)
        .order_by(Impersonation.started_at.desc(), Impersonation.id.desc())
        .limit(limit)
    ))


def unit_names(unit_ids: set[str]) -> dict[str, str]:
    """The names of the units ``unit_ids``, in one query."""
    if not unit_ids:
        return {}
    return {
        row[0]: row[1]
        for row in db.session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(unit_ids)))
    }


def set_notify(unit: Unit, value: bool) -> None:
    """Stage the unit's ``notify_impersonation`` policy."""
    unit.notify_impersonation = value


def access(access_id: str) -> Access | None:
    """The access with this id, its unit loaded (for ``Access.grants``)."""
    return db.session.scalars(
        select(Access).options(joinedload(Access.unit)).where(Access.id == access_id)
    ).first()
