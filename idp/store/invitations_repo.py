"""Queries and writes behind :mod:`idp.accounts.invitations` (pending SCIM records meeting
their holder). Writes are staged; :func:`atomic` (:func:`idp.store.unit_of_work.atomic`)
commits them together."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, select, update

from idp.store import unit_of_work
from idp.store.db import db, rowcount
from idp.store.models import (
    Account,
    AccountStatus,
    LdapLink,
    ScimUser,
    Unit,
    UnitGroupMember,
)

MAX_OPEN = 20  # a page shows at most this many pending records per address
atomic = unit_of_work.atomic  # the store's one transaction idiom
Conflict = unit_of_work.Conflict


def pending_for(email: str) -> list[tuple[str, str, str]]:
    """(SCIM id, unit id, unit name) of the active pending records for ``email``."""
    rows = db.session.execute(
        select(ScimUser.scim_id, Unit.id, Unit.name)
        .join(Unit, Unit.id == ScimUser.unit_id)
        .join(Account, Account.id == ScimUser.account_id)
        .where(ScimUser.pending_email == email.lower(), Account.status == AccountStatus.ACTIVE)
        .order_by(Unit.name, ScimUser.scim_id)
        .limit(MAX_OPEN)
    ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def managed_by_directory(account_id: str) -> bool:
    """Whether a SCIM record or an LDAP link already manages the account."""
    return bool(
        db.session.scalar(
            select(
                exists().where(ScimUser.account_id == account_id)
                | exists().where(LdapLink.account_id == account_id)
            )
        )
    )


def placeholder_of(scim_id: str) -> Account | None:
    """The placeholder account of a still pending record."""
    return db.session.scalars(
        select(Account)
        .join(ScimUser, ScimUser.account_id == Account.id)
        .where(ScimUser.scim_id == scim_id, ScimUser.pending_email.is_not(None))
    ).first()


def rebind(
    placeholder: Account, version: int, account_id: str, email: str, unit_id: str,
    at: datetime,
) -> bool:
    """Stage the move of a pending record from its placeholder to ``account_id``: the
    record (bound, keeping its SCIM id) and the group memberships (the access moved
    before, ``idp.accounts.accesses.move``); then delete the placeholder. False when
    anything changed since the caller read the placeholder at ``version`` (the record
    is no longer pending for ``email``, HR deactivated or changed it meanwhile): the
    caller rolls back."""
    placeholder_id = placeholder.id
    moved = db.session.execute(
        update(ScimUser)
        .where(ScimUser.account_id == placeholder_id, ScimUser.pending_email == email)
        .values(account_id=account_id, pending_email=None, joined_at=at)
        .execution_options(synchronize_session=False)
    )
    if rowcount(moved) != 1:
        return False
    db.session.execute(
        update(UnitGroupMember)
        .where(UnitGroupMember.account_id == placeholder_id)
        .values(account_id=account_id)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    gone = db.session.execute(
        delete(Account)
        .where(
            Account.id == placeholder_id,
            Account.version == version,
            Account.status == AccountStatus.ACTIVE,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.expunge(placeholder)
    return rowcount(gone) == 1
