"""Repository of provisioning state: SCIM tokens and the directory records of the
accounts a unit provisions (groups: :mod:`idp.store.unit_groups_repo`).

Searches take a :mod:`idp.store.predicates` tree and are always scoped to one unit:
a record of another unit can neither be read nor matched. Writes are staged; the
caller commits through :func:`atomic`, so one provisioning change and its audit
events land together. Optimistic concurrency: :func:`bump_account` (and
``unit_groups_repo.bump_group``) only succeed while the row still has the version
the caller read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update

from idp.store import unit_of_work
from idp.store.db import db, rowcount
from idp.store.models import (
    Access,
    Account,
    Consent,
    ScimToken,
    ScimUser,
    Unit,
    UnitGroup,
    UnitGroupMember,
    UnitProfileField,
    utcnow,
)
from idp.store.predicate_sql import user_condition, user_sort_column
from idp.store.predicates import Predicate

TOKEN_TOUCH_EVERY = timedelta(seconds=60)


# A write broke a uniqueness rule (another writer created the same name first);
# :func:`atomic` commits a block or rolls it back (the store's one transaction idiom).
DuplicateRow = unit_of_work.Conflict
atomic = unit_of_work.atomic


def rollback() -> None:
    db.session.rollback()


def add(row: Any) -> None:
    """Stage a new row in the current transaction."""
    db.session.add(row)


def flush() -> None:
    db.session.flush()


# -- units ---------------------------------------------------------------------------


def unit_by_ref(ref: str) -> Unit | None:
    """The unit whose id or slug is ``ref``."""
    unit = db.session.get(Unit, ref)
    if unit is None:
        unit = db.session.scalars(select(Unit).where(Unit.slug == ref)).first()
    return unit


def profile_fields(unit_id: str) -> Sequence[UnitProfileField]:
    """The unit's extra profile fields, in display order."""
    return db.session.scalars(
        select(UnitProfileField)
        .where(UnitProfileField.unit_id == unit_id)
        .order_by(UnitProfileField.position, UnitProfileField.name)
    ).all()


# -- tokens --------------------------------------------------------------------------


def add_token(row: ScimToken) -> ScimToken:
    """Stage a new token (the caller commits it with its audit event)."""
    db.session.add(row)
    return row


def token_by_hash(token_hash: str) -> ScimToken | None:
    return db.session.scalars(select(ScimToken).where(ScimToken.token_hash == token_hash)).first()


def token_by_id(token_id: str) -> ScimToken | None:
    return db.session.get(ScimToken, token_id)


def tokens_of(unit_id: str) -> Sequence[ScimToken]:
    return db.session.scalars(
        select(ScimToken).where(ScimToken.unit_id == unit_id).order_by(ScimToken.created_at)
    ).all()


def revoke_token(token_id: str, at: datetime) -> ScimToken | None:
    """Stage the revocation of a token (idempotent); None when no token has this id."""
    row = db.session.get(ScimToken, token_id)
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = at
    return row


def touch_token(token_id: str, at: datetime) -> None:
    """Stage the record of a use, at most once per :data:`TOKEN_TOUCH_EVERY` (keeps
    hot paths read-only)."""
    db.session.execute(
        update(ScimToken)
        .where(
            ScimToken.id == token_id,
            or_(ScimToken.last_used_at.is_(None), ScimToken.last_used_at < at - TOKEN_TOUCH_EVERY),
        )
        .values(last_used_at=at)
    )


# -- users ---------------------------------------------------------------------------


def user_row(unit_id: str, scim_id: str) -> tuple[Account, ScimUser, Access | None] | None:
    """The account, its directory record with SCIM id ``scim_id`` and its access to
    the unit (None without one: its facts are the unit's), if this unit provisions it."""
    row = db.session.execute(
        _with_access(select(Account, ScimUser, Access))
        .where(ScimUser.unit_id == unit_id, ScimUser.scim_id == scim_id)
        .execution_options(populate_existing=True)
    ).first()
    return (row[0], row[1], row[2]) if row else None


def _with_access(stmt: Any) -> Any:
    """``stmt`` over accounts joined with their directory records and (outer) their
    access to the record's unit."""
    return stmt.join(ScimUser, ScimUser.account_id == Account.id).outerjoin(
        Access, and_(Access.account_id == Account.id, Access.unit_id == ScimUser.unit_id)
    )


def address_taken(unit_id: str, email: str, except_account: str | None = None) -> bool:
    """Whether another of the unit's records has the address ``email``: a pending
    record asserting it, or a bound record whose account has it."""
    stmt = (
        select(ScimUser.account_id)
        .join(Account, Account.id == ScimUser.account_id)
        .where(
            ScimUser.unit_id == unit_id,
            or_(
                ScimUser.pending_email == email,
                and_(ScimUser.pending_email.is_(None), Account.email == email),
            ),
        )
    )
    if except_account is not None:
        stmt = stmt.where(ScimUser.account_id != except_account)
    return db.session.scalars(stmt).first() is not None


def user_name_taken(unit_id: str, user_name_key: str, except_account: str | None = None) -> bool:
    stmt = select(ScimUser.account_id).where(
        ScimUser.unit_id == unit_id, ScimUser.user_name_key == user_name_key
    )
    if except_account is not None:
        stmt = stmt.where(ScimUser.account_id != except_account)
    return db.session.scalars(stmt).first() is not None


def account_by_email(email: str) -> Account | None:
    """The account with this address (addresses are stored normalised, lower case)."""
    return db.session.scalars(select(Account).where(Account.email == email.lower())).first()


def account(account_id: str) -> Account | None:
    return db.session.get(Account, account_id)


def units_of(account_id: str) -> list[str]:
    """Ids of the units the account is a member of."""
    return list(
        db.session.scalars(select(Access.unit_id).where(Access.account_id == account_id))
    )


def access(account_id: str, unit_id: str) -> Access | None:
    return db.session.scalars(
        select(Access).where(Access.account_id == account_id, Access.unit_id == unit_id)
    ).first()


def bump_account(account_id: str, expected_version: int, values: dict[str, Any]) -> bool:
    """Write ``values`` and increment the version, only if it is still ``expected_version``.

    False means another writer got there first: the caller rolls back and retries.
    """
    result = db.session.execute(
        update(Account)
        .where(Account.id == account_id, Account.version == expected_version)
        .values(**values, version=expected_version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def update_directory_record(unit_id: str, account_id: str, values: dict[str, Any]) -> None:
    """Stage ``values`` on the unit's directory record of the account."""
    if values:
        db.session.execute(
            update(ScimUser)
            .where(ScimUser.account_id == account_id, ScimUser.unit_id == unit_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def joined(account_id: str) -> bool:
    """Whether the account's directory record was joined by the address's holder."""
    return db.session.scalar(
        select(ScimUser.joined_at.is_not(None)).where(ScimUser.account_id == account_id)
    ) is True


def detach_account(account_id: str, unit_id: str) -> None:
    """Remove what links an account to one unit: the unit's directory record, the
    membership and the unit's group memberships (the account itself stays)."""
    db.session.execute(
        delete(ScimUser)
        .where(ScimUser.account_id == account_id, ScimUser.unit_id == unit_id)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        delete(Access)
        .where(Access.account_id == account_id, Access.unit_id == unit_id)
        .execution_options(synchronize_session=False)
    )
    unit_groups = select(UnitGroup.id).where(UnitGroup.unit_id == unit_id)
    db.session.execute(
        delete(UnitGroupMember)
        .where(
            UnitGroupMember.account_id == account_id,
            UnitGroupMember.group_id.in_(unit_groups),
        )
        .execution_options(synchronize_session=False)
    )


def forget_account(account_id: str) -> None:
    """Remove what links an account to units and merchants: its directory record,
    memberships, group memberships and consents (the deprovisioning step)."""
    for model in (ScimUser, Access, UnitGroupMember, Consent):
        db.session.execute(
            delete(model)
            .where(model.account_id == account_id)
            .execution_options(synchronize_session=False)
        )


def search_users(
    unit_id: str,
    where: Predicate,
    sort_field: str | None,
    descending: bool,
    offset: int,
    limit: int,
) -> tuple[int, list[tuple[Account, ScimUser, Access | None]]]:
    """Total matches and one page of the unit's provisioned users.

    Order is stable (creation time, then id) so pages never skip or repeat records.
    """
    cond = and_(ScimUser.unit_id == unit_id, user_condition(unit_id, where))
    base = _with_access(select(Account, ScimUser, Access))
    rows: Sequence[Any] = []
    if limit > 0:
        order = []
        if sort_field:
            column = user_sort_column(sort_field)
            order.append(column.desc() if descending else column.asc())
        order += [ScimUser.created_at.asc(), Account.id.asc()]
        rows = db.session.execute(
            base.where(cond).order_by(*order).offset(offset).limit(limit)
        ).all()
    if offset == 0 and limit > 0 and len(rows) < limit:
        total = len(rows)
    else:
        total = int(
            db.session.scalar(
                _with_access(select(func.count()).select_from(Account)).where(cond)
            )
            or 0
        )
    return total, [(r[0], r[1], r[2]) for r in rows]


def groups_of_accounts(unit_id: str, account_ids: Iterable[str]) -> dict[str, list[UnitGroup]]:
    """The unit's groups of each given account (one query for a whole page)."""
    ids = list(account_ids)
    found: dict[str, list[UnitGroup]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = db.session.execute(
        select(UnitGroupMember.account_id, UnitGroup)
        .join(UnitGroup, UnitGroup.id == UnitGroupMember.group_id)
        .where(UnitGroup.unit_id == unit_id, UnitGroupMember.account_id.in_(ids))
        .order_by(UnitGroup.display_name, UnitGroup.id)
    ).all()
    for account_id, group in rows:
        found[account_id].append(group)
    return found


def accounts_of_records(unit_id: str, scim_ids: Iterable[str]) -> dict[str, str]:
    """For those of ``scim_ids`` that are users provisioned by this unit: their
    account ids (SCIM id -> account id)."""
    ids = list(set(scim_ids))
    if not ids:
        return {}
    rows = db.session.execute(
        select(ScimUser.scim_id, ScimUser.account_id).where(
            ScimUser.unit_id == unit_id, ScimUser.scim_id.in_(ids)
        )
    ).all()
    return {scim_id: account_id for scim_id, account_id in rows}
