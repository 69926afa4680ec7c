"""Repository of accounts (the employee's identity and corporate wallet) as the login
interaction and the administrator's levers need them.

Counters that concurrent requests change (``failed_code_attempts``) are only ever
changed by a single ``UPDATE ... SET x = x + 1`` statement, never read-modify-write.
Nothing here commits: :mod:`idp.accounts.lifecycle` (the lifecycle) commits through
:func:`idp.store.unit_of_work.atomic`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import joinedload

from idp.store.db import db, keep
from idp.store.models import Access, Account, UnitProfileField, utcnow


def by_email(email: str) -> Account | None:
    """The account with exactly this (already normalised) address, or None."""
    return keep(db.session.scalars(_BY_EMAIL, {"email": email}).first())


def get(account_id: str) -> Account | None:
    """The account with this id, or None."""
    return keep(db.session.get(Account, account_id))


def add(account: Account) -> None:
    """Stage a new account; the caller's transaction commits it."""
    db.session.add(account)


def record_code_failure(account_id: str) -> int:
    """Count one more consecutive wrong code atomically (one ``UPDATE``; none for an
    unknown id). Nothing is locked here: what the count means is
    :func:`idp.factors.email_otp.soft_locked`. Returns the new count (0 when the account is
    gone)."""
    count = db.session.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(failed_code_attempts=Account.failed_code_attempts + 1)
        .returning(Account.failed_code_attempts)
    ).scalar()
    return int(count or 0)


def reset_code_failures(account_id: str) -> None:
    """Start counting consecutive failures from zero again (after a good code)."""
    db.session.execute(
        update(Account)
        .where(Account.id == account_id, Account.failed_code_attempts != 0)
        .values(failed_code_attempts=0)
    )


def unlock(account_id: str) -> None:
    """Stage the end of a lock-out: the failure count (the soft lock) and
    ``locked_at`` (a hard lock of an earlier version) cleared."""
    db.session.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(locked_at=None, failed_code_attempts=0, version=Account.version + 1)
    )


def set_status(account_id: str, status: str, at: datetime | None = None) -> None:
    """Stage a status change (an :class:`~idp.store.models.AccountStatus`); the caller
    commits."""
    db.session.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(status=status, version=Account.version + 1, updated_at=at or utcnow())
    )


def accesses(account_id: str) -> list[Access]:
    """The account's memberships with their units loaded, by unit name."""
    rows = db.session.scalars(_ACCESSES, {"account_id": account_id})
    return sorted(rows, key=lambda m: (m.unit.name.lower(), m.unit_id))


def profile_fields(unit_ids: Iterable[str], distinct: bool = True) -> list[UnitProfileField]:
    """The extra wallet fields of these units, in each unit's display order; a field
    name defined by two units appears once (the first) unless not ``distinct``."""
    ids = list(unit_ids)
    if not ids:
        return []
    rows = db.session.scalars(_PROFILE_FIELDS, {"unit_ids": ids})
    if not distinct:
        return list(rows)
    seen: dict[str, UnitProfileField] = {}
    for row in rows:
        seen.setdefault(row.name, row)
    return list(seen.values())


# Hot statements of the login pages, built once (construction costs more than the
# query itself on SQLite).
_BY_EMAIL = select(Account).where(Account.email == bindparam("email"))
_ACCESSES = (
    select(Access)
    .options(joinedload(Access.unit))
    .where(Access.account_id == bindparam("account_id"))
)
_PROFILE_FIELDS = (
    select(UnitProfileField)
    .where(UnitProfileField.unit_id.in_(bindparam("unit_ids", expanding=True)))
    .order_by(UnitProfileField.position, UnitProfileField.name)
)
