"""Lists of accesses for administrators: one SQLAlchemy Core query per page.

The list joins ``accesses`` to ``accounts`` (for the e-mail address and the name) and
``units`` (for the unit's name), filters by :class:`Filter`, and orders by the
person's e-mail address, then the access id: a keyset (``(email, id) > cursor``) that
never repeats or skips a row that existed throughout the walk. Accounts without an
address (migration 0011s) come last, the cursor's address is then None.

Index use on PostgreSQL (migration 0008b):

* a unit's list: ``ix_accesses_unit`` (``unit_id, id``);
* free text ``q`` is a *prefix* of the e-mail address, the given or the family name,
  compared lower-case: three expression indexes with ``varchar_pattern_ops``, one
  bitmap OR; a substring search would scan every account, so there is none;
* an e-mail domain is a prefix of the reversed address on PostgreSQL (the
  expression index on ``reverse(lower(email))``), a suffix match on SQLite;
* conditions on the person over many units are evaluated first (see :func:`_from`);
* the platform-wide list without a filter walks ``accounts.email``'s unique index.

Read only: nothing here stages a change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    String,
    Table,
    and_,
    bindparam,
    false,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy import (
    cast as sql_cast,
)

from idp.store.db import db
from idp.store.models import Access, Account, PasswordCredential, Unit

ACCESSES = cast(Table, Access.__table__)
ACCOUNTS = cast(Table, Account.__table__)
UNITS = cast(Table, Unit.__table__)
PASSWORDS = cast(Table, PasswordCredential.__table__)
MAX_DEPTH = 12
# Up to this many units, a list starts from the units' accesses (ix_accesses_unit_id).
FEW_UNITS = 200

# The list's keyset: (the person's address, None for one without; the access id).
Keyset = tuple[str | None, str]


@dataclass(frozen=True)
class Filter:
    """What a list shows. ``unit_ids`` None: every unit (the operator)."""

    unit_ids: frozenset[str] | None = None
    status: str | None = None
    role: str | None = None
    group: str | None = None
    domain: str | None = None
    q: str | None = None
    signed_in_before: datetime | None = None
    signed_in_after: datetime | None = None
    never_signed_in: bool = False
    ids: frozenset[str] | None = None
    # The CSV export's options (idp.accounts.access_csv): any of these statuses; only
    # accesses whose details (invitation or welcome) were sent.
    statuses: frozenset[str] | None = None
    details_sent: bool = False


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _pattern(text: str) -> Any:
    """A LIKE pattern rendered into the statement (safely quoted) instead of a bound
    parameter: PostgreSQL plans with the value (a prefix becomes an index range, a
    role's frequency comes from the statistics). A bound pattern lets a prepared
    statement (psycopg prepares after five runs) fall back to a generic plan that
    scans every account: 75 ms instead of 15."""
    return bindparam(None, text, type_=String, literal_execute=True)


def _has_role(name: str) -> ColumnElement[bool]:
    # roles is a JSON list of names ([a-z0-9_.-]); its text holds "name" with quotes
    return sql_cast(ACCESSES.c.roles, String).like(
        _pattern("%" + _like_escape(f'"{name}"') + "%"), escape="\\"
    )


def _domain(domain: str) -> ColumnElement[bool]:
    # addresses are stored lower-case (idp.accounts.lifecycle.normalise_email)
    suffix = "@" + domain.lower()
    if db.engine.dialect.name == "postgresql":  # a prefix of the reversed address
        return func.reverse(func.lower(ACCOUNTS.c.email)).like(
            _pattern(_like_escape(suffix[::-1]) + "%"), escape="\\"
        )
    return ACCOUNTS.c.email.like(_pattern("%" + _like_escape(suffix)), escape="\\")


def _text(q: str) -> ColumnElement[bool]:
    prefix = _like_escape(q.lower()) + "%"
    return or_(
        func.lower(ACCOUNTS.c.email).like(_pattern(prefix), escape="\\"),
        func.lower(ACCOUNTS.c.given_name).like(_pattern(prefix), escape="\\"),
        func.lower(ACCOUNTS.c.family_name).like(_pattern(prefix), escape="\\"),
    )


def _access_where(f: Filter) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if f.unit_ids is not None:
        out.append(ACCESSES.c.unit_id.in_(sorted(f.unit_ids)) if f.unit_ids else false())
    if f.ids is not None:
        out.append(ACCESSES.c.id.in_(sorted(f.ids)) if f.ids else false())
    if f.status:
        out.append(ACCESSES.c.status == f.status)
    if f.role:
        out.append(_has_role(f.role))
    if f.group:
        out.append(_has_role(f.group))
    if f.signed_in_before is not None:
        out.append(ACCESSES.c.last_signin_at < f.signed_in_before)
    if f.signed_in_after is not None:
        out.append(ACCESSES.c.last_signin_at >= f.signed_in_after)
    if f.never_signed_in:
        out.append(ACCESSES.c.last_signin_at.is_(None))
    if f.statuses is not None:
        out.append(ACCESSES.c.status.in_(sorted(f.statuses)) if f.statuses else false())
    if f.details_sent:
        out.append(ACCESSES.c.details_sent_at.is_not(None))
    return out


def _account_where(f: Filter) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if f.domain:
        out.append(_domain(f.domain))
    if f.q:
        out.append(_text(f.q))
    return out


def _from(
    f: Filter, with_units: bool, after: Keyset | None = None
) -> tuple[Any, Any, list[ColumnElement[bool]]]:
    """The joined tables, the source of the person's columns (``id``, ``email``,
    ``given_name``, ``family_name``) and the conditions for ``f``.

    Conditions on the person (free text, e-mail domain) over many units are
    evaluated first, in a subquery ordered by address (``OFFSET 0`` keeps the
    planner from merging it): the prefix indexes find the matching accounts, and
    their accesses are joined in address order until the page is full. Left to
    itself, the planner walks every account in address order and tests each one,
    which is slow when the matches sort late (300 ms on 100,000 for a given name
    starting with T: the addresses start with the given name), or hash-joins every
    access (80 ms)."""
    where = _access_where(f)
    by_person = _account_where(f)
    few_units = f.unit_ids is not None and len(f.unit_ids) <= FEW_UNITS
    person: Any = ACCOUNTS
    if by_person and not few_units:
        inner = select(
            ACCOUNTS.c.id, ACCOUNTS.c.email, ACCOUNTS.c.given_name, ACCOUNTS.c.family_name,
            ACCOUNTS.c.phone_number,
        ).where(*by_person)
        if after is not None:
            inner = inner.where(
                ACCOUNTS.c.email.is_(None) if after[0] is None
                else or_(ACCOUNTS.c.email >= after[0], ACCOUNTS.c.email.is_(None))
            )
        person = inner.order_by(ACCOUNTS.c.email.asc().nulls_last()).offset(0).subquery("person")
    else:
        where += by_person
    joined: Any = ACCESSES.join(person, person.c.id == ACCESSES.c.account_id)
    if with_units:
        joined = joined.join(UNITS, UNITS.c.id == ACCESSES.c.unit_id)
    return joined, person, where


def _columns(person: Any) -> tuple[Any, ...]:
    return (
        ACCESSES.c.id,
        ACCESSES.c.account_id,
        ACCESSES.c.unit_id,
        ACCESSES.c.roles,
        ACCESSES.c.status,
        ACCESSES.c.platform_access,
        ACCESSES.c.notifications,
        ACCESSES.c.created_at,
        ACCESSES.c.ends_at,
        ACCESSES.c.last_signin_at,
        ACCESSES.c.details_sent_at,
        person.c.email,
        person.c.given_name,
        person.c.family_name,
        person.c.phone_number,
        UNITS.c.name.label("unit_name"),
    )


def _ordered(stmt: Any, person: Any, after: Keyset | None, limit: int) -> Any:
    """Order by address, accounts without one (migration 0011s) last on both backends
    (PostgreSQL's own order for the address index), then by access id; continue
    after the keyset ``after``, whose address is None within those last ones."""
    stmt = stmt.order_by(person.c.email.asc().nulls_last(), ACCESSES.c.id).limit(limit)
    if after is not None and after[0] is None:
        stmt = stmt.where(person.c.email.is_(None), ACCESSES.c.id > after[1])
    elif after is not None:
        stmt = stmt.where(or_(
            tuple_(person.c.email, ACCESSES.c.id) > tuple_(*after), person.c.email.is_(None)
        ))
    return stmt


def page(f: Filter, after: Keyset | None, limit: int) -> Sequence[Row[Any]]:
    """Up to ``limit`` rows matching ``f`` after the keyset ``after`` (email, id),
    ordered by e-mail address then access id; one query."""
    stmt, person = _rows(f, after)
    return db.session.execute(_ordered(stmt, person, after, limit)).all()


def _rows(f: Filter, after: Keyset | None) -> tuple[Any, Any]:
    """The select of the list's rows matching ``f`` (not ordered), and the source
    of the person's columns."""
    joined, person, where = _from(f, True, after)
    # the person's password status (issue 13; one row per account at most)
    joined = joined.outerjoin(PASSWORDS, PASSWORDS.c.account_id == ACCESSES.c.account_id)
    stmt = select(*_columns(person), PASSWORDS.c.status.label("password_status")) \
        .select_from(joined).where(*where)
    return stmt, person


def export_page(f: Filter, after: str | None, limit: int) -> Sequence[Row[Any]]:
    """Up to ``limit`` rows matching ``f`` (the list's filter and columns) with an
    access id after ``after``, ordered by access id: the CSV export's walk. For one
    unit each page is a range of ``ix_accesses_unit_id``, so a walk over n rows
    reads n rows. (The list's order by address costs each page a sort of the rest
    of the unit's matches: fine for a page a person looks at, quadratic over an
    export of 100,000 rows.)"""
    stmt, _ = _rows(f, None)
    if after is not None:
        stmt = stmt.where(ACCESSES.c.id > after)
    return db.session.execute(stmt.order_by(ACCESSES.c.id).limit(limit)).all()


def count(f: Filter) -> int:
    """How many accesses match ``f`` (the same filter as :func:`page`); the accounts
    are joined only when a condition is about the person."""
    joined: Any
    if _account_where(f):  # a plain join: no order to keep
        joined = ACCESSES.join(ACCOUNTS, ACCOUNTS.c.id == ACCESSES.c.account_id)
        where = _access_where(f) + _account_where(f)
    else:
        joined, where = ACCESSES, _access_where(f)
    return int(db.session.scalar(select(func.count()).select_from(joined).where(*where)) or 0)


def keys(f: Filter, after: Keyset | None, limit: int) -> Sequence[Row[Any]]:
    """The next ``limit`` matches' (email, id, account_id, unit_id): the batches of a
    bulk action walk a filter result with this, in the list's order."""
    joined, person, where = _from(f, False, after)
    stmt = select(
        person.c.email, ACCESSES.c.id, ACCESSES.c.account_id, ACCESSES.c.unit_id
    ).select_from(joined).where(*where)
    return db.session.execute(_ordered(stmt, person, after, limit)).all()


def subtree_ids(roots: Iterable[str]) -> frozenset[str]:
    """``roots`` and every unit below them, in one recursive query (at most
    :data:`MAX_DEPTH` levels)."""
    ids = sorted(set(roots))
    if not ids:
        return frozenset()
    base = select(UNITS.c.id, literal(0).label("depth")).where(UNITS.c.id.in_(ids))
    tree = base.cte("tree", recursive=True)
    below = select(UNITS.c.id, (tree.c.depth + 1).label("depth")).where(
        UNITS.c.parent_id == tree.c.id, tree.c.depth < MAX_DEPTH
    )
    tree = tree.union(below)
    return frozenset(db.session.scalars(select(tree.c.id).distinct()))


def people(unit_ids: frozenset[str] | None, q: str, limit: int) -> Sequence[Row[Any]]:
    """Accounts holding an access in ``unit_ids`` (None: any account) whose e-mail
    address, given or family name starts with ``q``, ordered by address, at most
    ``limit``. The matches come first (the prefix indexes, see :func:`_from`)."""
    person = (
        select(ACCOUNTS.c.id, ACCOUNTS.c.email, ACCOUNTS.c.given_name, ACCOUNTS.c.family_name)
        .where(_text(q))
        .order_by(ACCOUNTS.c.email.asc().nulls_last())
        .offset(0)
        .subquery("person")
    )
    stmt = select(person).order_by(person.c.email.asc().nulls_last()).limit(limit)
    if unit_ids is not None:
        held = select(ACCESSES.c.account_id).where(
            ACCESSES.c.account_id == person.c.id,
            ACCESSES.c.unit_id.in_(sorted(unit_ids)) if unit_ids else false(),
        )
        stmt = stmt.where(held.exists())
    return db.session.execute(stmt).all()


def visible_account(
    unit_ids: frozenset[str] | None, *, email: str | None = None, account_id: str | None = None
) -> Account | None:
    """The account with ``email`` or ``account_id`` when it holds an access in
    ``unit_ids`` (None: any account at all), else None."""
    stmt = select(Account)
    if email is not None:
        stmt = stmt.where(Account.email == email)
    elif account_id is not None:
        stmt = stmt.where(Account.id == account_id)
    else:
        return None
    if unit_ids is not None:
        held = select(ACCESSES.c.account_id).where(
            ACCESSES.c.unit_id.in_(sorted(unit_ids)) if unit_ids else false()
        )
        stmt = stmt.where(Account.id.in_(held))
    return db.session.scalars(stmt).first()


def in_unit(access_id: str, unit_id: str) -> Access | None:
    """The access ``access_id`` when it belongs to ``unit_id``, else None."""
    return db.session.scalars(
        select(Access).where(and_(Access.id == access_id, Access.unit_id == unit_id))
    ).first()


def by_ids(access_ids: Iterable[str]) -> list[Access]:
    """The accesses among ``access_ids`` that exist (one query)."""
    ids = sorted(set(access_ids))
    if not ids:
        return []
    return list(db.session.scalars(select(Access).where(Access.id.in_(ids))))


def by_emails(unit_id: str, emails: Iterable[str]) -> Sequence[Row[Any]]:
    """The accounts among ``emails`` (lower-case addresses) with their access to
    ``unit_id`` if any: (email, account_id, access_id, status, platform_access,
    roles, notifications, details_sent_at); one query (a CSV import's batch)."""
    wanted = sorted(set(emails))
    if not wanted:
        return []
    joined = ACCOUNTS.outerjoin(
        ACCESSES, and_(ACCESSES.c.account_id == ACCOUNTS.c.id, ACCESSES.c.unit_id == unit_id)
    )
    stmt: Any = select(
        ACCOUNTS.c.email, ACCOUNTS.c.id.label("account_id"), ACCESSES.c.id.label("access_id"),
        ACCESSES.c.status, ACCESSES.c.platform_access, ACCESSES.c.roles,
        ACCESSES.c.notifications, ACCESSES.c.details_sent_at,
    ).select_from(joined).where(ACCOUNTS.c.email.in_(wanted))
    rows: Sequence[Row[Any]] = db.session.execute(stmt).all()
    return rows
