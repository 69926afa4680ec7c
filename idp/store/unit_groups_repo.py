"""Repository of unit groups, their members and the group-to-role rules.

Every lookup is scoped to one unit. Writes are staged; callers commit through
:func:`idp.store.scim_repo.atomic`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, delete, func, select, update

from idp.store.db import db, rowcount
from idp.store.models import (
    Account,
    GroupRoleRule,
    ScimUser,
    UnitGroup,
    UnitGroupMember,
    utcnow,
)
from idp.store.predicate_sql import group_condition, group_sort_column
from idp.store.predicates import Predicate


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
    cond = and_(UnitGroup.unit_id == unit_id, group_condition(where))
    rows: Sequence[UnitGroup] = []
    if limit > 0:
        order = []
        if sort_field:
            column = group_sort_column(sort_field)
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
    """For each group: its members as (SCIM id, display text), in a stable order."""
    ids = list(group_ids)
    found: dict[str, list[tuple[str, str]]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = db.session.execute(
        select(
            UnitGroupMember.group_id,
            func.coalesce(ScimUser.scim_id, Account.id),
            ScimUser.display_name,
            func.coalesce(ScimUser.pending_email, Account.email),
        )
        .join(Account, Account.id == UnitGroupMember.account_id)
        .join(UnitGroup, UnitGroup.id == UnitGroupMember.group_id)
        .outerjoin(
            ScimUser,
            and_(ScimUser.account_id == Account.id, ScimUser.unit_id == UnitGroup.unit_id),
        )
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
    return rowcount(result) == 1


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
