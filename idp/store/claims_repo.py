"""Reads of what an account can release to a merchant: the account, its business-unit
memberships and the wallet fields a unit defines."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from idp.store.db import db, keep
from idp.store.models import Access, Account, UnitProfileField


def account(account_id: str) -> Account | None:
    """The account with this id, or None."""
    return keep(db.session.get(Account, account_id))


def accesses(account_id: str) -> list[Access]:
    """The account's memberships with their units loaded."""
    return list(db.session.scalars(_ACCESSES, {"account_id": account_id}))


def profile_fields(unit_id: str) -> list[UnitProfileField]:
    """The extra wallet fields ``unit_id`` defines (with their types), in display order."""
    return list(db.session.scalars(_FIELDS, {"unit_id": unit_id}))


# Built once: these run for every token, userinfo answer and consent page.
_ACCESSES = (
    select(Access)
    .options(joinedload(Access.unit))
    .where(Access.account_id == bindparam("account_id"))
)
_FIELDS = (
    select(UnitProfileField)
    .where(UnitProfileField.unit_id == bindparam("unit_id"))
    .order_by(UnitProfileField.position, UnitProfileField.name)
)
