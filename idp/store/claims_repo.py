"""Reads of what an account can release to a merchant: the account, its business-unit
memberships and the wallet fields a unit defines."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from idp.store.db import db
from idp.store.models import Account, Membership, UnitProfileField


def account(account_id: str) -> Account | None:
    """The account with this id, or None."""
    return db.session.get(Account, account_id)


def memberships(account_id: str) -> list[Membership]:
    """The account's memberships with their units loaded."""
    return list(
        db.session.scalars(
            select(Membership)
            .options(joinedload(Membership.unit))
            .where(Membership.account_id == account_id)
        )
    )


def profile_field_names(unit_id: str) -> list[str]:
    """Names of the extra wallet fields ``unit_id`` defines, in display order."""
    return list(
        db.session.scalars(
            select(UnitProfileField.name)
            .where(UnitProfileField.unit_id == unit_id)
            .order_by(UnitProfileField.position, UnitProfileField.name)
        )
    )
