"""Repository of provisioning state: SCIM tokens, directory records of accounts,
unit groups and their members, group-to-role rules.

Searches take a :mod:`idp.store.predicates` tree and are always scoped to one unit:
a record of another unit can neither be read nor matched. Writes are staged; the
caller commits through :func:`atomic`, so one provisioning change and its audit
events land together. Optimistic concurrency: :func:`bump_account` and
:func:`bump_group` only succeed while the row still has the version the caller read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from idp.store.db import db
from idp.store.models import (
    Account,
    Consent,
    GroupRoleRule,
    Membership,
    ScimToken,
    ScimUser,
    Unit,
    UnitGroup,
    UnitGroupMember,
    UnitProfileField,
    utcnow,
)
from idp.store.predicates import (
    AllOf,
    AnyOf,
    BadComparison,
    Compare,
    Constant,
    Negate,
    Predicate,
    Present,
    Related,
    UnknownField,
)

TOKEN_TOUCH_EVERY = timedelta(seconds=60)

# Searchable fields of a provisioned user and of a unit group, by neutral name.
USER_FIELDS: dict[str, Any] = {
    "id": Account.id,
    "user_name": ScimUser.user_name,
    "external_id": ScimUser.external_id,
    "email": Account.email,
    "given_name": Account.given_name,
    "family_name": Account.family_name,
    "display_name": ScimUser.display_name,
    "title": ScimUser.title,
    "user_type": ScimUser.user_type,
    "phone_number": Account.phone_number,
    "locale": Account.locale,
    "personnel_number": Account.personnel_number,
    "cost_centre": Account.cost_centre,
    "department": Account.department,
    "manager_id": ScimUser.manager_id,
    "created_at": ScimUser.created_at,
    "updated_at": Account.updated_at,
}
GROUP_FIELDS: dict[str, Any] = {
    "id": UnitGroup.id,
    "display_name": UnitGroup.display_name,
    "external_id": UnitGroup.external_id,
    "created_at": UnitGroup.created_at,
    "updated_at": UnitGroup.updated_at,
}
EXTRA_PREFIX = "extra."


class DuplicateRow(Exception):
    """A write broke a uniqueness rule (another writer created the same name first)."""


@contextmanager
def atomic() -> Iterator[None]:
    """Commit what the block staged, or roll all of it back if the block raises.

    A uniqueness violation at flush or commit surfaces as :class:`DuplicateRow`.
    """
    try:
        yield
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise DuplicateRow(str(exc.orig)[:200]) from None
    except BaseException:
        db.session.rollback()
        raise


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
    db.session.add(row)
    db.session.commit()
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
    """Revoke a token (idempotent); None when no token has this id."""
    row = db.session.get(ScimToken, token_id)
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = at
        db.session.commit()
    return row


def touch_token(token_id: str, at: datetime) -> None:
    """Record use, at most once per :data:`TOKEN_TOUCH_EVERY` (keeps hot paths read-only)."""
    result = db.session.execute(
        update(ScimToken)
        .where(
            ScimToken.id == token_id,
            or_(ScimToken.last_used_at.is_(None), ScimToken.last_used_at < at - TOKEN_TOUCH_EVERY),
        )
        .values(last_used_at=at)
    )
    if result.rowcount:
        db.session.commit()
    else:
        db.session.rollback()


# -- users ---------------------------------------------------------------------------


def user_row(unit_id: str, account_id: str) -> tuple[Account, ScimUser] | None:
    """The account and its directory record, if this unit provisions it."""
    row = db.session.execute(
        select(Account, ScimUser)
        .join(ScimUser, ScimUser.account_id == Account.id)
        .where(ScimUser.unit_id == unit_id, Account.id == account_id)
        .execution_options(populate_existing=True)
    ).first()
    return (row[0], row[1]) if row else None


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


def directory_record(account_id: str) -> ScimUser | None:
    return db.session.get(ScimUser, account_id)


def units_of(account_id: str) -> list[str]:
    """Ids of the units the account is a member of."""
    return list(
        db.session.scalars(select(Membership.unit_id).where(Membership.account_id == account_id))
    )


def membership(account_id: str, unit_id: str) -> Membership | None:
    return db.session.scalars(
        select(Membership).where(Membership.account_id == account_id, Membership.unit_id == unit_id)
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
    return result.rowcount == 1


def update_directory_record(account_id: str, values: dict[str, Any]) -> None:
    if values:
        db.session.execute(
            update(ScimUser)
            .where(ScimUser.account_id == account_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def forget_account(account_id: str) -> None:
    """Remove what links an account to units and merchants: its directory record,
    memberships, group memberships and consents (the deprovisioning step)."""
    for model in (ScimUser, Membership, UnitGroupMember, Consent):
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
) -> tuple[int, list[tuple[Account, ScimUser]]]:
    """Total matches and one page of the unit's provisioned users.

    Order is stable (creation time, then id) so pages never skip or repeat records.
    """
    cond = and_(ScimUser.unit_id == unit_id, _user_condition(unit_id, where))
    base = select(Account, ScimUser).join(ScimUser, ScimUser.account_id == Account.id)
    rows: Sequence[Any] = []
    if limit > 0:
        order = []
        if sort_field:
            column = _column(USER_FIELDS, sort_field)
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
                select(func.count())
                .select_from(Account)
                .join(ScimUser, ScimUser.account_id == Account.id)
                .where(cond)
            )
            or 0
        )
    return total, [(r[0], r[1]) for r in rows]


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


def provisioned_ids(unit_id: str, account_ids: Iterable[str]) -> set[str]:
    """Those of ``account_ids`` that are users provisioned by this unit."""
    ids = list(set(account_ids))
    if not ids:
        return set()
    return set(
        db.session.scalars(
            select(ScimUser.account_id).where(
                ScimUser.unit_id == unit_id, ScimUser.account_id.in_(ids)
            )
        )
    )


# -- groups --------------------------------------------------------------------------


def group_row(unit_id: str, group_id: str) -> UnitGroup | None:
    return db.session.scalars(
        select(UnitGroup)
        .where(UnitGroup.unit_id == unit_id, UnitGroup.id == group_id)
        .execution_options(populate_existing=True)
    ).first()


def search_groups(
    unit_id: str,
    where: Predicate,
    sort_field: str | None,
    descending: bool,
    offset: int,
    limit: int,
) -> tuple[int, list[UnitGroup]]:
    """Total matches and one page of the unit's groups, in a stable order."""
    cond = and_(UnitGroup.unit_id == unit_id, _group_condition(where))
    rows: Sequence[UnitGroup] = []
    if limit > 0:
        order = []
        if sort_field:
            column = _column(GROUP_FIELDS, sort_field)
            order.append(column.desc() if descending else column.asc())
        order += [UnitGroup.created_at.asc(), UnitGroup.id.asc()]
        rows = db.session.scalars(
            select(UnitGroup).where(cond).order_by(*order).offset(offset).limit(limit)
        ).all()
    if offset == 0 and limit > 0 and len(rows) < limit:
        total = len(rows)
    else:
        total = int(db.session.scalar(select(func.count()).select_from(UnitGroup).where(cond))
                    or 0)
    return total, list(rows)


def members_of(group_ids: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """For each group: its members as (account id, display text), in a stable order."""
    ids = list(group_ids)
    found: dict[str, list[tuple[str, str]]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = db.session.execute(
        select(UnitGroupMember.group_id, Account.id, ScimUser.display_name, Account.email)
        .join(Account, Account.id == UnitGroupMember.account_id)
        .outerjoin(ScimUser, ScimUser.account_id == Account.id)
        .where(UnitGroupMember.group_id.in_(ids))
        .order_by(UnitGroupMember.added_at, Account.id)
    ).all()
    for group_id, account_id, display_name, email in rows:
        found[group_id].append((account_id, display_name or email))
    return found


def add_members(group_id: str, account_ids: Iterable[str]) -> None:
    """Stage membership rows for those not yet members."""
    ids = set(account_ids)
    if not ids:
        return
    present = set(
        db.session.scalars(
            select(UnitGroupMember.account_id).where(
                UnitGroupMember.group_id == group_id, UnitGroupMember.account_id.in_(ids)
            )
        )
    )
    now = utcnow()
    for account_id in sorted(ids - present):
        db.session.add(UnitGroupMember(group_id=group_id, account_id=account_id, added_at=now))


def remove_members(group_id: str, account_ids: Iterable[str]) -> None:
    ids = list(set(account_ids))
    if ids:
        db.session.execute(
            delete(UnitGroupMember)
            .where(UnitGroupMember.group_id == group_id, UnitGroupMember.account_id.in_(ids))
            .execution_options(synchronize_session=False)
        )


def bump_group(group_id: str, expected_version: int, values: dict[str, Any]) -> bool:
    """Like :func:`bump_account`, for a unit group."""
    result = db.session.execute(
        update(UnitGroup)
        .where(UnitGroup.id == group_id, UnitGroup.version == expected_version)
        .values(**values, version=expected_version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def delete_group(group_id: str) -> None:
    db.session.execute(
        delete(UnitGroupMember)
        .where(UnitGroupMember.group_id == group_id)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        delete(UnitGroup).where(UnitGroup.id == group_id).execution_options(
            synchronize_session=False
        )
    )


def group_names_of(unit_id: str, account_id: str) -> set[str]:
    """Lower-cased display names of the unit groups the account belongs to."""
    return {
        name.lower()
        for name in db.session.scalars(
            select(UnitGroup.display_name)
            .join(UnitGroupMember, UnitGroupMember.group_id == UnitGroup.id)
            .where(UnitGroup.unit_id == unit_id, UnitGroupMember.account_id == account_id)
        )
    }


# -- group role rules ----------------------------------------------------------------


def role_rules(unit_id: str) -> Sequence[GroupRoleRule]:
    return db.session.scalars(
        select(GroupRoleRule)
        .where(GroupRoleRule.unit_id == unit_id)
        .order_by(GroupRoleRule.group_name, GroupRoleRule.role)
    ).all()


def role_rule(unit_id: str, group_name: str, role: str) -> GroupRoleRule | None:
    return db.session.scalars(
        select(GroupRoleRule).where(
            GroupRoleRule.unit_id == unit_id,
            GroupRoleRule.group_name == group_name,
            GroupRoleRule.role == role,
        )
    ).first()


def delete_role_rule(rule: GroupRoleRule) -> None:
    db.session.delete(rule)


def member_ids_of_groups_named(unit_id: str, names: Iterable[str]) -> set[str]:
    """Accounts in any of the unit's groups whose lower-cased name is in ``names``."""
    wanted = list(set(names))
    if not wanted:
        return set()
    return set(
        db.session.scalars(
            select(UnitGroupMember.account_id)
            .join(UnitGroup, UnitGroup.id == UnitGroupMember.group_id)
            .where(UnitGroup.unit_id == unit_id, func.lower(UnitGroup.display_name).in_(wanted))
        )
    )


# -- predicate compilation -----------------------------------------------------------


def _column(fields: dict[str, Any], name: str) -> Any:
    if name.startswith(EXTRA_PREFIX) and fields is USER_FIELDS:
        return Account.extra[name[len(EXTRA_PREFIX) :]].as_string()
    if name == "active" and fields is USER_FIELDS:
        return Account.status
    try:
        return fields[name]
    except KeyError:
        raise UnknownField(name) from None


def _user_condition(unit_id: str, where: Predicate) -> ColumnElement[bool]:
    def related(relation: str, inner: Predicate) -> ColumnElement[bool]:
        if relation != "groups":
            raise UnknownField(relation)
        g = aliased(UnitGroup)
        m = aliased(UnitGroupMember)
        group_fields = {"id": g.id, "display_name": g.display_name}
        return exists(
            select(m.account_id)
            .join(g, g.id == m.group_id)
            .where(
                m.account_id == Account.id,
                g.unit_id == unit_id,
                _condition(group_fields, inner, _no_relations),
            )
        )

    return _condition(USER_FIELDS, where, related)


def _group_condition(where: Predicate) -> ColumnElement[bool]:
    def related(relation: str, inner: Predicate) -> ColumnElement[bool]:
        if relation != "members":
            raise UnknownField(relation)
        m = aliased(UnitGroupMember)
        return exists(
            select(m.account_id).where(
                m.group_id == UnitGroup.id,
                _condition({"id": m.account_id}, inner, _no_relations),
            )
        )

    return _condition(GROUP_FIELDS, where, related)


def _no_relations(relation: str, inner: Predicate) -> ColumnElement[bool]:
    raise UnknownField(relation)


def _condition(fields: dict[str, Any], p: Predicate, related: Any) -> ColumnElement[bool]:
    if isinstance(p, Constant):
        return true() if p.value else false()
    if isinstance(p, AllOf):
        return and_(true(), *(_condition(fields, q, related) for q in p.parts))
    if isinstance(p, AnyOf):
        return or_(false(), *(_condition(fields, q, related) for q in p.parts))
    if isinstance(p, Negate):
        return not_(_condition(fields, p.part, related))
    if isinstance(p, Related):
        return related(p.relation, p.where)
    if isinstance(p, Present):
        if p.field == "active" and fields is USER_FIELDS:
            return true()
        column = _column(fields, p.field)
        return and_(column.is_not(None), func.length(column) > 0)
    if isinstance(p, Compare):
        if p.field == "active" and fields is USER_FIELDS:
            return _active(p)
        return _compare(_column(fields, p.field), p)
    raise UnknownField(type(p).__name__)


def _active(p: Compare) -> ColumnElement[bool]:
    if not isinstance(p.value, bool) or p.op not in ("eq", "ne"):
        raise BadComparison("active compares only with eq/ne and true/false")
    wants_active = p.value if p.op == "eq" else not p.value
    return Account.status == "active" if wants_active else Account.status != "active"


def _compare(column: Any, p: Compare) -> ColumnElement[bool]:
    value = p.value
    if isinstance(value, bool):
        raise BadComparison(f"{p.field} is not a boolean")
    if value is None:
        if p.op == "eq":
            return or_(column.is_(None), column == "")
        if p.op == "ne":
            return and_(column.is_not(None), column != "")
        raise BadComparison("null only compares with eq/ne")
    if p.op == "ne":
        return not_(_compare(column, Compare(p.field, "eq", value, p.case_exact)))
    if isinstance(value, datetime):
        if p.op in ("co", "sw", "ew"):
            raise BadComparison(f"{p.op} does not apply to dates")
        return and_(column.is_not(None), _ordered(column, p.op, value))
    if isinstance(value, int | float):
        value = str(value)
    text = value if p.case_exact else value.lower()
    target = column if p.case_exact else func.lower(column)
    if p.op == "co":
        cond = _contains(target, text)
    elif p.op == "sw":
        cond = func.substr(target, 1, len(text)) == text
    elif p.op == "ew":
        cond = func.substr(target, func.length(target) - len(text) + 1) == text
    else:
        cond = _ordered(target, p.op, text)
    return and_(column.is_not(None), cond)


def _contains(target: Any, text: str) -> ColumnElement[bool]:
    if db.engine.dialect.name == "postgresql":
        return func.strpos(target, text) > 0
    return func.instr(target, text) > 0


def _ordered(target: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "eq":
        return target == value
    if op == "ne":
        return target != value
    if op == "gt":
        return target > value
    if op == "ge":
        return target >= value
    if op == "lt":
        return target < value
    if op == "le":
        return target <= value
    raise BadComparison(f"unknown operator {op}")
