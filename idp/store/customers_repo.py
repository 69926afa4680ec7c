"""Repository of customers: top-level units (``parent_id`` NULL) of kind ``company``
or ``person``, their listing with filters and keyset paging, their activity (the
newest sign-in through any access of the customer or its sub-units) and the bulk
removal of everything a customer has.

Writes are staged; the customer service (``idp.units.customers``) commits them with
its audit event in one :func:`idp.store.unit_of_work.atomic` block.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import aliased

from idp.store import commit_hooks
from idp.store.db import db, rowcount
from idp.store.models import (
    Access,
    Account,
    AdminClient,
    Grant,
    Session,
    SignIn,
    StaffAssignment,
    StaffMember,
    Unit,
)


@dataclass(frozen=True)
class Filters:
    """What a customer list is narrowed to (None: no restriction)."""

    ids: Collection[str] | None = None  # the customers the caller may see
    kind: str | None = None
    status: str | None = None
    activity: str | None = None  # active | dormant | never
    active_since: datetime | None = None  # the instant dividing active from dormant
    q: str | None = None
    created_before: datetime | None = None
    created_after: datetime | None = None


def _tree(roots: list[str] | None = None) -> Any:
    """Units with the id of their customer (the top of their tree), as a CTE: every
    unit, or only the trees of ``roots``."""
    top = Unit.id.in_(roots) if roots is not None else Unit.parent_id.is_(None)
    base = select(Unit.id.label("id"), Unit.id.label("root"), literal(0).label("depth")).where(
        top
    )
    tree = base.cte("customer_tree", recursive=True)
    below = select(Unit.id, tree.c.root, (tree.c.depth + 1)).where(
        Unit.parent_id == tree.c.id, tree.c.depth < 16
    )
    return tree.union_all(below)


def _last_signins(roots: list[str] | None = None) -> Any:
    """Per customer: the newest ``last_signin_at`` of any access in its tree."""
    tree = _tree(roots)
    # newest per unit first (one row per unit), then per customer over its tree
    per_unit = (
        select(Access.unit_id.label("unit_id"), func.max(Access.last_signin_at).label("last"))
        .where(Access.last_signin_at.is_not(None))
        .group_by(Access.unit_id)
    )
    if roots is not None:
        per_unit = per_unit.where(Access.unit_id.in_(select(tree.c.id)))
    units_last = per_unit.subquery("unit_last")
    return (
        select(tree.c.root.label("root"), func.max(units_last.c.last).label("last"))
        .select_from(tree)
        .join(units_last, units_last.c.unit_id == tree.c.id)
        .group_by(tree.c.root)
        .subquery("customer_last")
    )


def last_signins(roots: list[str]) -> dict[str, datetime | None]:
    """The newest sign-in of each of the customers ``roots`` (absent: never)."""
    if not roots:
        return {}
    last = _last_signins(roots)
    rows = db.session.execute(select(last.c.root, last.c.last))
    return {row[0]: _aware(row[1]) for row in rows}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _signed_in(since: datetime | None, name: str) -> ColumnElement[bool]:
    """True for a customer with an access in its tree (itself or a sub-unit) whose
    last sign-in is at or after ``since`` (None: any sign-in at all); ``name``
    names its CTE.

    For a count over every customer: its own accesses by a semi-join the planner
    may hash (``ix_accesses_last_signin``) or probe (``ix_accesses_unit_signin``,
    migration 0009p), never an aggregate over every access; its sub-units' through
    the few units that have a parent, walking up to their customer."""
    signed = (
        Access.last_signin_at.is_not(None) if since is None
        else Access.last_signin_at >= since
    )
    own = exists(select(literal(1)).where(Access.unit_id == Unit.id, signed))
    sub = aliased(Unit)
    step = aliased(Unit)
    base = select(sub.parent_id.label("id"), literal(1).label("depth")).where(
        sub.parent_id.is_not(None),
        exists(select(literal(1)).where(Access.unit_id == sub.id, signed)),
    )
    up = base.cte(name, recursive=True)
    up = up.union_all(
        select(step.parent_id, up.c.depth + 1)
        .join(up, up.c.id == step.id)
        .where(step.parent_id.is_not(None), up.c.depth < 16)
    )
    return or_(own, Unit.id.in_(select(up.c.id)))


def _filtered(f: Filters) -> Select[Any]:
    """The customers matching ``f`` except its activity (see :func:`page`, :func:`count`)."""
    stmt = select(Unit).where(Unit.parent_id.is_(None))
    conds: list[ColumnElement[bool]] = []
    if f.ids is not None:
        conds.append(Unit.id.in_(list(f.ids)) if f.ids else literal(False))
    if f.kind:
        conds.append(Unit.kind == f.kind)
    if f.status:
        conds.append(Unit.status == f.status)
    if f.created_before is not None:
        conds.append(Unit.created_at < f.created_before)
    if f.created_after is not None:
        conds.append(Unit.created_at >= f.created_after)
    if f.q:
        pattern = f"%{_escape_like(f.q.lower())}%"
        conds.append(or_(
            func.lower(Unit.name).like(pattern, escape="\\"),
            Unit.slug.like(pattern, escape="\\"),
            func.lower(func.coalesce(Unit.vat_id, "")).like(pattern, escape="\\"),
        ))
    if conds:
        stmt = stmt.where(and_(*conds))
    return stmt


def _activity_matches(f: Filters, last: datetime | None) -> bool:
    if f.activity == "never":
        return last is None
    if f.active_since is None:
        return True
    if f.activity == "active":
        return last is not None and last >= f.active_since
    if f.activity == "dormant":
        return last is not None and last < f.active_since
    return True


# Candidates read per round when the activity is filtered: the first round is
# FIRST_ROUND (at least the page), every further one twice the last, up to MAX_ROUND.
FIRST_ROUND = 200
MAX_ROUND = 2000


def page(
    f: Filters, after: tuple[str, str] | None, limit: int
) -> list[tuple[Unit, datetime | None]]:
    """Up to ``limit`` customers matching ``f``, ordered by (name, id), after the
    sort key ``after``; each with its newest sign-in (None: never).

    The newest sign-in is computed for the rows read only (:func:`last_signins`).
    With an activity filter the customers matching the other filters are read in
    name order (``ix_units_name``) in rounds, and each round is kept by its
    activity until the page is full: the cost follows how common the activity
    is among them, not the number of accesses."""
    base = _filtered(f).order_by(Unit.name, Unit.id)
    if not f.activity:
        if after is not None:
            base = base.where(_after(after))
        units = list(db.session.scalars(base.limit(limit)))
        last = last_signins([unit.id for unit in units])
        return [(unit, last.get(unit.id)) for unit in units]
    # rounds of (id, name) only; the page's rows are loaded whole at the end
    keys = base.with_only_columns(Unit.id, Unit.name)
    kept: list[tuple[str, datetime | None]] = []
    size = max(limit, FIRST_ROUND)
    while len(kept) < limit:
        stmt = keys.where(_after(after)) if after is not None else keys
        rows = db.session.execute(stmt.limit(size)).all()
        last = last_signins([row[0] for row in rows])
        kept += [(row[0], last.get(row[0])) for row in rows
                 if _activity_matches(f, last.get(row[0]))]
        if len(rows) < size:
            break
        after = (rows[-1][1], rows[-1][0])
        size = min(2 * size, MAX_ROUND)
    kept = kept[:limit]
    loaded = {u.id: u for u in db.session.scalars(
        select(Unit).where(Unit.id.in_([unit_id for unit_id, _ in kept])))} if kept else {}
    return [(loaded[unit_id], when) for unit_id, when in kept if unit_id in loaded]


def _after(key: tuple[str, str]) -> ColumnElement[bool]:
    """After the sort key (name, id) of the list's order."""
    return tuple_(Unit.name, Unit.id) > tuple_(literal(key[0]), literal(key[1]))


def count(f: Filters) -> int:
    """How many customers match ``f``."""
    stmt = _filtered(f)
    if f.activity == "never":
        stmt = stmt.where(~_signed_in(None, "signed_up"))
    elif f.activity == "active" and f.active_since is not None:
        stmt = stmt.where(_signed_in(f.active_since, "recent_up"))
    elif f.activity == "dormant" and f.active_since is not None:
        stmt = stmt.where(_signed_in(None, "signed_up"), ~_signed_in(f.active_since, "recent_up"))
    stmt = stmt.with_only_columns(Unit.id)
    return int(db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite hands aggregates back as text
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return cast(datetime, value)


def last_signin(unit_ids: Iterable[str]) -> datetime | None:
    """The newest ``last_signin_at`` of any access to ``unit_ids``."""
    ids = list(unit_ids)
    if not ids:
        return None
    return _aware(db.session.scalar(
        select(func.max(Access.last_signin_at)).where(Access.unit_id.in_(ids))
    ))


def by_id(unit_id: str) -> Unit | None:
    """The customer (a top-level unit) with this id, or None."""
    if not unit_id or len(unit_id) > 32:
        return None
    unit = db.session.get(Unit, unit_id)
    return unit if unit is not None and unit.parent_id is None else None


def set_status(unit_ids: Iterable[str], status: str) -> int:
    """Stage ``status`` on every one of ``unit_ids`` (a customer and its sub-units)."""
    ids = list(unit_ids)
    if not ids:
        return 0
    result = db.session.execute(
        update(Unit).where(Unit.id.in_(ids)).values(status=status)
        .execution_options(synchronize_session="fetch")
    )
    commit_hooks.note_bulk_write(Unit)  # the caches of units hear of it at the commit
    return rowcount(result)


def access_by_id(access_id: str) -> Access | None:
    """The access with this id, or None."""
    if not access_id or len(access_id) > 32:
        return None
    return db.session.get(Access, access_id)


def staff_of(unit_id: str) -> list[tuple[StaffAssignment, Account]]:
    """The staff assignments to the customer with the staff members' accounts."""
    rows = db.session.execute(
        select(StaffAssignment, Account)
        .join(StaffMember, StaffMember.account_id == StaffAssignment.account_id)
        .join(Account, Account.id == StaffAssignment.account_id)
        .where(StaffAssignment.unit_id == unit_id)
        .order_by(Account.email)
    ).all()
    return [(row[0], row[1]) for row in rows]


@dataclass
class Removed:
    """What deleting a customer removed, as counts (no personal data)."""

    units: int = 0
    accesses: int = 0
    grants: int = 0
    sign_ins: int = 0
    sessions: int = 0


def delete_everything(unit_ids: list[str]) -> Removed:
    """Stage the removal of the units ``unit_ids`` (a customer and all its sub-units)
    with what references them: accesses, grants issued for them (their refresh
    tokens cascade; their access tokens fail at once at userinfo and introspection),
    the browser sessions those grants were issued in, and the sign-in records through
    them. Rows with a foreign key to a unit (profile fields, permission groups, SCIM,
    LDAP, connectors, domains, staff assignments, admin clients) go by ON DELETE
    CASCADE. Accounts are never deleted."""
    out = Removed()
    if not unit_ids:
        return out
    sessions = select(Grant.session_id).where(
        Grant.unit_id.in_(unit_ids), Grant.session_id.is_not(None)
    )
    out.sessions = rowcount(db.session.execute(
        delete(Session).where(Session.id_hash.in_(sessions))
        .execution_options(synchronize_session=False)
    ))
    out.grants = rowcount(db.session.execute(
        delete(Grant).where(Grant.unit_id.in_(unit_ids))
        .execution_options(synchronize_session=False)
    ))
    out.sign_ins = rowcount(db.session.execute(
        delete(SignIn).where(SignIn.unit_id.in_(unit_ids))
        .execution_options(synchronize_session=False)
    ))
    out.accesses = rowcount(db.session.execute(
        delete(Access).where(Access.unit_id.in_(unit_ids))
        .execution_options(synchronize_session=False)
    ))
    # children before parents: parent_id is ON DELETE SET NULL, which would make a
    # sub-unit a customer of its own for the rest of the transaction
    db.session.execute(
        update(Unit).where(Unit.id.in_(unit_ids)).values(parent_id=None)
        .execution_options(synchronize_session=False)
    )
    out.units = rowcount(db.session.execute(
        delete(Unit).where(Unit.id.in_(unit_ids)).execution_options(synchronize_session=False)
    ))
    # the database's cascades also removed the units' domains, connectors, SCIM
    # tokens and directories: every cache hears of it at the commit
    commit_hooks.note_bulk_write(*commit_hooks.watched_models())
    return out


def client_ids(unit_ids: Iterable[str]) -> list[str]:
    """The client ids of the administration API clients bound to ``unit_ids``."""
    ids = list(unit_ids)
    if not ids:
        return []
    return list(db.session.scalars(
        select(AdminClient.client_id).where(AdminClient.unit_id.in_(ids))
    ))


def accesses_page(
    unit_ids: Iterable[str], after: tuple[str | None, str] | None, limit: int
) -> list[tuple[Access, Account]]:
    """Up to ``limit`` accesses to ``unit_ids`` with their accounts, ordered by
    (e-mail address, access id), after the sort key ``after``. Accounts without an
    address (migration 0011s) come last on both backends; a key's address is None
    within them."""
    ids = list(unit_ids)
    if not ids:
        return []
    stmt = (
        select(Access, Account)
        .join(Account, Account.id == Access.account_id)
        .where(Access.unit_id.in_(ids))
    )
    if after is not None and after[0] is None:
        stmt = stmt.where(Account.email.is_(None), Access.id > after[1])
    elif after is not None:
        stmt = stmt.where(or_(
            tuple_(Account.email, Access.id) > tuple_(literal(after[0]), literal(after[1])),
            Account.email.is_(None),
        ))
    order = (Account.email.asc().nulls_last(), Access.id)
    rows = db.session.execute(stmt.order_by(*order).limit(limit)).all()
    return [(row[0], row[1]) for row in rows]


def accesses_count(unit_ids: Iterable[str]) -> int:
    """How many accesses ``unit_ids`` have."""
    ids = list(unit_ids)
    if not ids:
        return 0
    return int(db.session.scalar(
        select(func.count()).select_from(Access).where(Access.unit_id.in_(ids))
    ) or 0)
