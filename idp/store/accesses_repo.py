"""Repository of accesses (a person's access to a unit). Stages only: the service
(``idp.accounts.accesses``) or its caller commits with ``idp.store.unit_of_work.atomic()``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, String, Table, and_, bindparam, exists, or_, select, update
from sqlalchemy import cast as sa_cast
from sqlalchemy.orm import joinedload

from idp.store.db import db
from idp.store.models import (
    UNIT_BLOCKED,
    Access,
    AccessStatus,
    Account,
    AccountStatus,
    SignIn,
    Unit,
)

ACCESSES = cast(Table, Access.__table__)
UNITS = cast(Table, Unit.__table__)
ACCOUNTS = cast(Table, Account.__table__)


def granting_sql(now: Any) -> ColumnElement[bool]:
    """SQL for :meth:`Access.grants` over the ``accesses`` table: active, with
    platform access, not ended at ``now`` (a value or a bind parameter), and its
    unit not blocked."""
    return and_(
        ACCESSES.c.status == AccessStatus.ACTIVE.value,
        ACCESSES.c.platform_access.is_(True),
        or_(ACCESSES.c.ends_at.is_(None), ACCESSES.c.ends_at > now),
        # one primary-key probe: the unit is not blocked (its customer is not)
        ~exists().where(UNITS.c.id == ACCESSES.c.unit_id, UNITS.c.status == UNIT_BLOCKED),
    )


def get(account_id: str, unit_id: str) -> Access | None:
    """The account's access to the unit (any status), or None."""
    return db.session.scalars(
        select(Access).where(Access.account_id == account_id, Access.unit_id == unit_id)
    ).first()


def in_units(account_id: str, unit_ids: Iterable[str]) -> list[Access]:
    """The account's accesses (any status) to any of ``unit_ids``, in one query."""
    ids = list(unit_ids)
    if not ids:
        return []
    return list(db.session.scalars(
        select(Access).options(joinedload(Access.unit))
        .where(Access.account_id == account_id, Access.unit_id.in_(ids))
    ))


def of_account(account_id: str) -> list[Access]:
    """Every access of the account (any status), units loaded."""
    return list(db.session.scalars(_OF_ACCOUNT, {"account_id": account_id}))


def account(account_id: str) -> Account | None:
    return db.session.get(Account, account_id)


def add(row: Access) -> None:
    """Stage a new access."""
    db.session.add(row)


def delete(row: Access) -> None:
    """Stage the deletion of an access."""
    db.session.delete(row)


def flush() -> None:
    db.session.flush()


def set_values(account_id: str, unit_id: str, values: dict[str, Any]) -> int:
    """Stage ``values`` on the account's access to the unit; the number of rows (0/1)."""
    result = db.session.execute(
        update(Access)
        .where(Access.account_id == account_id, Access.unit_id == unit_id)
        .values(**values)
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def stage_signin(account_id: str, unit_id: str, at: datetime) -> None:
    """Stage ``last_signin_at`` of the access (one UPDATE, no read): it rides in the
    transaction of the sign-in record."""
    db.session.connection().execute(_TOUCH, {"a": account_id, "u": unit_id, "at": at})


def signed_in_ever(account_id: str) -> bool:
    """Whether the account completed at least one sign-in at a merchant."""
    return db.session.scalar(
        select(SignIn.id).where(SignIn.account_id == account_id).limit(1)
    ) is not None


_OF_ACCOUNT = (
    select(Access)
    .options(joinedload(Access.unit))
    .where(Access.account_id == bindparam("account_id"))
)
# Core statements on the hot sign-in path (built once; no ORM bookkeeping to run):
# the column is not read back by this transaction.
_TOUCH = (
    update(ACCESSES)
    .where(ACCESSES.c.account_id == bindparam("a"), ACCESSES.c.unit_id == bindparam("u"),
           ACCESSES.c.status == AccessStatus.ACTIVE.value)
    .values(last_signin_at=bindparam("at"))
)


def main_users(unit_id: str, now: datetime) -> list[str]:
    """Ids of the accounts that hold ``main_user`` in the unit through an access that
    grants at ``now``, their account active (one query)."""
    stmt = (
        select(ACCESSES.c.account_id)
        .join(ACCOUNTS, ACCOUNTS.c.id == ACCESSES.c.account_id)
        .where(
            ACCESSES.c.unit_id == unit_id,
            granting_sql(now),
            cast_text(ACCESSES.c.roles).like('%"main\\_user"%', escape="\\"),
            ACCOUNTS.c.status == AccountStatus.ACTIVE.value,
        )
    )
    return list(db.session.scalars(stmt))


def lock_unit(unit_id: str) -> None:
    """Hold the unit's row until the transaction ends (PostgreSQL; SQLite writes one
    at a time anyway): two administrators removing each other's main-user access at
    once are serialised, so one of them sees the other's change."""
    db.session.execute(select(Unit.id).where(Unit.id == unit_id).with_for_update())


def by_id(access_id: str) -> Access | None:
    """The access with this id, or None."""
    return db.session.get(Access, access_id)


def cast_text(column: Any) -> Any:
    """A JSON column as its text (portable across SQLite and PostgreSQL)."""
    return sa_cast(column, String)



def unit(unit_id: str) -> Unit | None:
    return db.session.get(Unit, unit_id)


@contextmanager
def batched() -> Iterator[None]:
    """Stage many changes without flushing before every query (a bulk action's
    batch): the updates and audit events go to the database together at the commit,
    or at an explicit :func:`flush`."""
    with db.session.no_autoflush:
        yield
