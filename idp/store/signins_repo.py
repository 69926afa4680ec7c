"""Repository of sign-ins at merchants (the employee's transaction list)."""

from __future__ import annotations

from sqlalchemy import select

from idp.store.db import db
from idp.store.models import SignIn


def insert(row: SignIn) -> SignIn:
    """Stage one sign-in record (the service commits)."""
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
