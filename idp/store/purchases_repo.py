"""Repository of budgets, their usage and purchases (``idp.purchases``). Stages only:
the services commit with :func:`idp.store.unit_of_work.atomic`.

Serialisation (:func:`lock_budgets`): a purchase that reserves against budgets first
locks their rows, in id order, so two purchases touching the same budget run one
after the other and never both read the old usage. PostgreSQL: ``SELECT ... FOR
UPDATE`` ordered by id (a consistent order, so no deadlock). SQLite has a single
writer: a no-op ``UPDATE`` of the same rows takes the database's write lock before
the usage is read (pysqlite runs the earlier SELECTs outside a transaction, so the
reads after the lock see every committed reservation)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import joinedload

from idp.store.db import db
from idp.store.models import (
    Access,
    Account,
    Approval,
    ApprovalChain,
    ApprovalComment,
    ApprovalPolicy,
    Budget,
    BudgetUsage,
    PaymentMethod,
    Purchase,
    Unit,
    new_id,
)


def add(*rows: object) -> None:
    """Stage new or changed rows."""
    db.session.add_all(rows)


def delete(row: object) -> None:
    db.session.delete(row)


def unit(unit_id: str) -> Unit | None:
    return db.session.get(Unit, unit_id)


def budgets_of_units(unit_ids: Iterable[str]) -> list[Budget]:
    """Every budget defined in any of ``unit_ids`` (one query)."""
    ids = list(unit_ids)
    if not ids:
        return []
    return list(db.session.scalars(select(Budget).where(Budget.unit_id.in_(ids))))


def budgets_page(unit_id: str, after: tuple[str, str, str] | None, limit: int) -> list[Budget]:
    """A unit's budgets ordered by (scope, subject, id), after the keyset ``after``."""
    query = select(Budget).where(Budget.unit_id == unit_id)
    if after is not None:
        query = query.where(
            (Budget.scope > after[0])
            | ((Budget.scope == after[0]) & (Budget.subject > after[1]))
            | ((Budget.scope == after[0]) & (Budget.subject == after[1]) & (Budget.id > after[2]))
        )
    query = query.order_by(Budget.scope, Budget.subject, Budget.id).limit(limit)
    return list(db.session.scalars(query))


def budget(unit_id: str, scope: str, subject: str) -> Budget | None:
    return db.session.scalars(
        select(Budget).where(
            Budget.unit_id == unit_id, Budget.scope == scope, Budget.subject == subject
        )
    ).first()


def budget_by_id(budget_id: str) -> Budget | None:
    return db.session.get(Budget, budget_id)


def access_of(account_id: str, unit_id: str) -> Access | None:
    return db.session.scalars(
        select(Access).where(Access.account_id == account_id, Access.unit_id == unit_id)
    ).first()


def accesses_in_units(account_id: str, unit_ids: list[str]) -> list[Access]:
    """The account's accesses (any status) to any of ``unit_ids``, in one query
    (built once: the purchase hot path runs it on every authorisation)."""
    if not unit_ids:
        return []
    return list(db.session.scalars(_ACCESSES_IN, {"a": account_id, "u": unit_ids}))


# The units come with the accesses: Access.grants() reads the unit's status.
_ACCESSES_IN = select(Access).options(joinedload(Access.unit)).where(
    Access.account_id == bindparam("a"), Access.unit_id.in_(bindparam("u", expanding=True))
)


def access_of_id(access_id: str) -> Access | None:
    return db.session.get(Access, access_id)


def lock_budgets(budget_ids: Iterable[str]) -> dict[str, tuple[int, int | None, str]]:
    """Lock the budget rows (see the module) until the transaction ends, and return
    what they say under the lock: id -> (amount_minor, per_order_minor, currency);
    a budget removed meanwhile is missing."""
    ids = sorted(set(budget_ids))
    if not ids:
        return {}
    if db.session.get_bind().dialect.name == "postgresql":
        rows = db.session.connection().execute(_LOCK_BUDGETS, {"ids": ids}).all()
    else:
        rows = db.session.connection().execute(_LOCK_BUDGETS_SQLITE, {"ids": ids}).all()
    return {r.id: (r.amount_minor, r.per_order_minor, r.currency) for r in rows}


_BUDGETS = cast(Table, Budget.__table__)
# A Core statement built once (the hot path): the lock, no ORM bookkeeping.
_TERMS = (_BUDGETS.c.id, _BUDGETS.c.amount_minor, _BUDGETS.c.per_order_minor,
          _BUDGETS.c.currency)
_LOCK_BUDGETS = (
    select(*_TERMS).where(_BUDGETS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_BUDGETS.c.id).with_for_update()
)
# SQLite: an UPDATE that changes nothing takes the database's write lock.
_LOCK_BUDGETS_SQLITE = (
    update(_BUDGETS).where(_BUDGETS.c.id.in_(bindparam("ids", expanding=True)))
    .values(unit_id=_BUDGETS.c.unit_id).returning(*_TERMS)
)


class Usage(NamedTuple):
    """A usage row as the ledger reads and writes it: its id and the amount used."""

    id: str
    used_minor: int


UsageKey = tuple[str, str, str]  # (budget id, access id or "", period key)


def usage(keys: Iterable[UsageKey]) -> dict[UsageKey, Usage]:
    """The usage rows for (budget id, access id or "", period key), in one query. Core
    statements here and in the writes below: the purchase hot path runs them on every
    authorisation, and the ledger needs no ORM objects (it locks the budgets first)."""
    wanted = set(keys)
    if not wanted:
        return {}
    rows = db.session.connection().execute(_USAGE, {
        "b": sorted({k[0] for k in wanted}), "p": sorted({k[2] for k in wanted}),
        "a": sorted({k[1] for k in wanted}),
    })
    out = {}
    for row in rows:
        key = (row.budget_id, row.access_id, row.period_start)
        if key in wanted:
            out[key] = Usage(row.id, row.used_minor)
    return out


def usage_by_ids(ids: Iterable[str]) -> dict[str, Usage]:
    """The usage rows with these ids (a removed budget's are gone), by id."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = db.session.connection().execute(_USAGE_BY_IDS, {"ids": wanted})
    return {row.id: Usage(row.id, row.used_minor) for row in rows}


def new_usage(budget_id: str, access_id: str, period_start: str, used_minor: int) -> Usage:
    """Stage a new usage row (inserted at once, inside the caller's transaction)."""
    row = Usage(new_id(), used_minor)
    db.session.connection().execute(_USAGE_INSERT, {
        "id": row.id, "budget_id": budget_id, "access_id": access_id,
        "period_start": period_start, "used_minor": used_minor,
    })
    return row


def add_usage(usage_ids: Iterable[str], amount: int) -> None:
    """Add ``amount`` to what these usage rows have used (the caller holds their
    budgets' locks), in one statement."""
    ids = sorted(set(usage_ids))
    if ids:
        db.session.connection().execute(_USAGE_ADD, {"ids": ids, "amount": amount})


def set_usage(usage_id: str, used_minor: int) -> None:
    """Set what a usage row has used (the caller holds its budget's lock)."""
    db.session.connection().execute(_USAGE_SET, {"usage": usage_id, "used": used_minor})


_USAGE_TABLE = cast(Table, BudgetUsage.__table__)
_USAGE_TERMS = (_USAGE_TABLE.c.id, _USAGE_TABLE.c.budget_id, _USAGE_TABLE.c.access_id,
                _USAGE_TABLE.c.period_start, _USAGE_TABLE.c.used_minor)
_USAGE = (
    select(*_USAGE_TERMS).where(_USAGE_TABLE.c.budget_id.in_(bindparam("b", expanding=True)))
    .where(_USAGE_TABLE.c.period_start.in_(bindparam("p", expanding=True)))
    .where(_USAGE_TABLE.c.access_id.in_(bindparam("a", expanding=True)))
)
_USAGE_BY_IDS = select(*_USAGE_TERMS).where(
    _USAGE_TABLE.c.id.in_(bindparam("ids", expanding=True)))
_USAGE_INSERT = insert(_USAGE_TABLE)
_USAGE_ADD = (
    update(_USAGE_TABLE).where(_USAGE_TABLE.c.id.in_(bindparam("ids", expanding=True)))
    .values(used_minor=_USAGE_TABLE.c.used_minor + bindparam("amount"))
)
_USAGE_SET = (
    update(_USAGE_TABLE).where(_USAGE_TABLE.c.id == bindparam("usage"))
    .values(used_minor=bindparam("used"))
)


def insert_purchase(row: Purchase) -> None:
    """Insert a new purchase at once (one Core statement, inside the caller's
    transaction: rows that reference it may follow). ``row`` stays detached from the
    session: a later change to it is written by reading it again."""
    db.session.connection().execute(_PURCHASE_INSERT, {
        c.name: getattr(row, c.key) for c in _PURCHASE_COLUMNS
    })


_PURCHASES = cast(Table, Purchase.__table__)
_PURCHASE_COLUMNS = tuple(Purchase.__mapper__.columns)
_PURCHASE_INSERT = insert(_PURCHASES)


def purchase(purchase_id: str, lock: bool = False) -> Purchase | None:
    query = select(Purchase).where(Purchase.id == purchase_id)
    if lock and db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return db.session.scalars(query.execution_options(populate_existing=True)).first()


def lock_purchase_row(purchase_id: str) -> None:
    """Take the write lock for a purchase's change before reading it (SQLite: the
    database's write lock; PostgreSQL: :func:`purchase` with ``lock``)."""
    if db.session.get_bind().dialect.name != "postgresql":
        db.session.execute(
            update(Purchase).where(Purchase.id == purchase_id)
            .values(status=Purchase.status).execution_options(synchronize_session=False)
        )


def purchases_page(
    *,
    unit_ids: Iterable[str] | None = None,
    account_id: str | None = None,
    status: str | None = None,
    client_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> list[Purchase]:
    """Purchases newest first, filtered, after the keyset ``before``
    (created_at, id)."""
    query = select(Purchase)
    if unit_ids is not None:
        query = query.where(Purchase.unit_id.in_(list(unit_ids)))
    if account_id is not None:
        query = query.where(Purchase.account_id == account_id)
    if status is not None:
        query = query.where(Purchase.status == status)
    if client_id is not None:
        query = query.where(Purchase.client_id == client_id)
    if since is not None:
        query = query.where(Purchase.created_at >= since)
    if until is not None:
        query = query.where(Purchase.created_at < until)
    if before is not None:
        query = query.where(
            (Purchase.created_at < before[0])
            | ((Purchase.created_at == before[0]) & (Purchase.id < before[1]))
        )
    query = query.order_by(Purchase.created_at.desc(), Purchase.id.desc()).limit(limit)
    return list(db.session.scalars(query))


def payment_methods_of_units(unit_ids: Iterable[str]) -> list[PaymentMethod]:
    """The payment methods of any of ``unit_ids`` (one query)."""
    ids = list(unit_ids)
    if not ids:
        return []
    return list(db.session.scalars(
        select(PaymentMethod).where(PaymentMethod.unit_id.in_(ids)).order_by(PaymentMethod.kind)
    ))


def payment_method(unit_id: str, kind: str) -> PaymentMethod | None:
    return db.session.scalars(
        select(PaymentMethod).where(PaymentMethod.unit_id == unit_id, PaymentMethod.kind == kind)
    ).first()


def approval(approval_id: str) -> Approval | None:
    return db.session.scalars(
        select(Approval).where(Approval.id == approval_id)
        .execution_options(populate_existing=True)
    ).first()


def approval_of(purchase_id: str) -> Approval | None:
    return db.session.scalars(
        select(Approval).where(Approval.purchase_id == purchase_id)
        .execution_options(populate_existing=True)
    ).first()


def comments(approval_id: str, limit: int = 200) -> list[ApprovalComment]:
    """The thread, oldest first (at most ``limit``)."""
    return list(db.session.scalars(
        select(ApprovalComment).where(ApprovalComment.approval_id == approval_id)
        .order_by(ApprovalComment.created_at, ApprovalComment.id).limit(limit)
    ))


def people_in_units(unit_ids: Iterable[str], limit: int) -> list[tuple[Access, Account]]:
    """Accesses in ``unit_ids`` and their accounts (candidates for approvers; the
    caller checks roles and the permission), at most ``limit``."""
    ids = list(unit_ids)
    rows = db.session.execute(
        select(Access, Account).join(Account, Account.id == Access.account_id)
        .where(Access.unit_id.in_(ids)).order_by(Access.unit_id, Access.id).limit(limit)
    ).all()
    return [(a, b) for a, b in rows]


def groups_granting(unit_ids: Iterable[str], permission: str) -> set[str]:
    """Names of the custom permission groups of ``unit_ids`` granting ``permission``."""
    from idp.store.models import PermissionGroup

    rows = db.session.scalars(
        select(PermissionGroup).where(PermissionGroup.unit_id.in_(list(unit_ids)))
    )
    return {g.name for g in rows if permission in (g.permissions or [])}


def pending_approvals(unit_ids: Iterable[str], limit: int = 50) -> list[Approval]:
    ids = list(unit_ids)
    if not ids:
        return []
    return list(db.session.scalars(
        select(Approval).where(Approval.unit_id.in_(ids), Approval.status == "pending")
        .order_by(Approval.created_at.desc()).limit(limit)
    ))


def due_approvals(now: datetime, limit: int) -> list[Approval]:
    """Pending approvals past their expiry (for the sweep)."""
    return list(db.session.scalars(
        select(Approval).where(Approval.status == "pending", Approval.expires_at <= now)
        .limit(limit)
    ))


def account(account_id: str) -> Account | None:
    return db.session.get(Account, account_id)


def flush() -> None:
    """Write what is staged so far (rows that others reference by foreign key go
    first), still inside the caller's transaction."""
    db.session.flush()


def manager_of(account_id: str) -> Account | None:
    """The manager of the person in their SCIM record (enterprise ``manager``:
    the SCIM id, account id or external id of another record of the same unit), or
    None."""
    from idp.store.models import ScimUser

    record = db.session.get(ScimUser, account_id)
    if record is None or not record.manager_id:
        return None
    boss = db.session.scalars(
        select(ScimUser).where(
            ScimUser.unit_id == record.unit_id,
            (ScimUser.scim_id == record.manager_id)
            | (ScimUser.account_id == record.manager_id)
            | (ScimUser.external_id == record.manager_id),
        ).limit(1)
    ).first()
    if boss is None or boss.account_id == account_id:
        return None
    return db.session.get(Account, boss.account_id)


# --- approval policies and chains (issue 17, item 3) ---------------------------------


def approval_policies(unit_ids: Iterable[str]) -> dict[str, ApprovalPolicy]:
    """The approval policies set in any of ``unit_ids``, by unit id (one query)."""
    ids = list(unit_ids)
    if not ids:
        return {}
    rows = db.session.scalars(select(ApprovalPolicy).where(ApprovalPolicy.unit_id.in_(ids)))
    return {r.unit_id: r for r in rows}


def approval_chain(approval_id: str) -> ApprovalChain | None:
    return db.session.scalars(
        select(ApprovalChain).where(ApprovalChain.approval_id == approval_id)
        .execution_options(populate_existing=True)
    ).first()


def group_names(unit_ids: Iterable[str]) -> set[str]:
    """Names of the custom permission groups defined in any of ``unit_ids``."""
    from idp.store.models import PermissionGroup

    ids = list(unit_ids)
    if not ids:
        return set()
    return set(db.session.scalars(
        select(PermissionGroup.name).where(PermissionGroup.unit_id.in_(ids))
    ))
