"""Repository of sign-ins at merchants (the employee's transaction list). Stages
only; the caller commits (:func:`idp.store.unit_of_work.atomic`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select

from idp.store.db import db
from idp.store.models import SignIn


def add(row: SignIn) -> SignIn:
    """Stage one sign-in record."""
    db.session.add(row)
    return row


def for_account(account_id: str, limit: int = 100) -> list[SignIn]:
    """The account's most recent sign-ins, newest first."""
    return list(
        db.session.scalars(
            select(SignIn)
            .where(SignIn.account_id == account_id)
            .order_by(SignIn.at.desc())
            .limit(limit)
        )
    )


def of_unit_after(
    unit_id: str, since: datetime, after: tuple[datetime, str] | None, limit: int
) -> list[SignIn]:
    """A batch of the unit's sign-ins at or after ``since`` in (time, id) order after
    the keyset ``after`` (for exports that stream in constant memory)."""
    stmt = select(SignIn).where(SignIn.unit_id == unit_id, SignIn.at >= since)
    if after is not None:
        at, last = after
        stmt = stmt.where(or_(SignIn.at > at, and_(SignIn.at == at, SignIn.id > last)))
    rows = list(db.session.scalars(stmt.order_by(SignIn.at, SignIn.id).limit(limit)))
    db.session.expunge_all()  # an export keeps no batch in the session
    return rows
