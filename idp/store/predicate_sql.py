"""Translation of :mod:`idp.store.predicates` trees into SQL conditions over the
provisioning tables. Only fields listed here can be searched; a user's ``groups`` and
a group's ``members`` are searched through ``EXISTS`` sub-queries that stay inside the
caller's unit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, select, true
from sqlalchemy.orm import aliased

from idp.store.db import db
from idp.store.models import (
    Access,
    AccessStatus,
    Account,
    AccountStatus,
    ScimUser,
    UnitGroup,
    UnitGroupMember,
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

# Searchable fields of a provisioned user and of a unit group, by neutral name.
USER_FIELDS: dict[str, Any] = {
    "id": ScimUser.scim_id,
    "user_name": ScimUser.user_name,
    "external_id": ScimUser.external_id,
    # A pending record's address is the one HR gave, not its placeholder's.
    "email": func.coalesce(ScimUser.pending_email, Account.email),
    "given_name": Account.given_name,
    "family_name": Account.family_name,
    "display_name": ScimUser.display_name,
    "title": ScimUser.title,
    "user_type": ScimUser.user_type,
    "phone_number": Account.phone_number,
    "locale": Account.locale,
    "personnel_number": Access.personnel_number,
    "cost_centre": Access.cost_centre,
    "department": Access.department,
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


def user_sort_column(name: str) -> Any:
    """The column a user search sorts by for the neutral field ``name``."""
    return _column(USER_FIELDS, name)


def group_sort_column(name: str) -> Any:
    return _column(GROUP_FIELDS, name)


def user_condition(unit_id: str, where: Predicate) -> ColumnElement[bool]:
    """SQL for ``where`` over the unit's users (accounts joined with directory records)."""
    return _user_condition(unit_id, where)


def group_condition(where: Predicate) -> ColumnElement[bool]:
    """SQL for ``where`` over unit groups."""
    return _group_condition(where)


def _column(fields: dict[str, Any], name: str) -> Any:
    if name.startswith(EXTRA_PREFIX) and fields is USER_FIELDS:
        return Access.extra[name[len(EXTRA_PREFIX) :]].as_string()
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
        record = aliased(ScimUser)
        return exists(
            select(m.account_id)
            .join(
                record,
                and_(record.account_id == m.account_id, record.unit_id == UnitGroup.unit_id),
            )
            .where(
                m.group_id == UnitGroup.id,
                _condition({"id": record.scim_id}, inner, _no_relations),
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
    # A joined record is active unless its unit suspended the access (the person's own
    # account status is not the unit's); any other record follows its account.
    joined = ScimUser.joined_at.is_not(None)
    active = or_(
        and_(joined, or_(Access.status.is_(None), Access.status != AccessStatus.SUSPENDED)),
        and_(not_(joined), Account.status == AccountStatus.ACTIVE),
    )
    return active if wants_active else not_(active)


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
