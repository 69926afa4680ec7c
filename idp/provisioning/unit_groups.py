"""Groups a unit's HR system provisions, and the rules that turn them into unit roles.

A :class:`~idp.store.models.GroupRoleRule` says "members of the unit group named
*Purchasing* (case-insensitive) get the role *buyer*". Roles named by any rule of a
unit are *managed*: :func:`sync_roles` recomputes them from group membership on
every change, while roles no rule names (granted by an admin, a domain rule, LDAP)
are left alone. Rules may be configured before the HR system pushes the group.

Groups only ever contain users the same unit provisions; another unit's user id is
refused as if it did not exist. Like users, groups carry a version: changes are
written only over the version they were computed from, and retried otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from idp import audit
from idp.accounts import accesses
from idp.provisioning.service import (
    Actor,
    Busy,
    Conflict,
    InvalidValue,
    NotFound,
    PreconditionFailed,
    attempts,
)
from idp.store import scim_repo, unit_groups_repo
from idp.store.models import GroupRoleRule, UnitGroup
from idp.store.predicates import Predicate
from idp.units import registry as units

NAME_LENGTH = 256


@dataclass
class DirectoryGroup:
    """A unit group; ``members`` are (SCIM user id, display text) pairs."""

    display_name: str
    id: str = ""
    external_id: str | None = None
    members: list[tuple[str, str]] | None = None
    version: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def member_ids(self) -> list[str]:
        return [m[0] for m in self.members or []]


class _Retry(Exception):
    pass


def get_group(unit_id: str, group_id: str, with_members: bool = True) -> DirectoryGroup:
    """One of the unit's groups; :class:`NotFound` for any other id."""
    row = unit_groups_repo.group_row(unit_id, group_id)
    if row is None:
        raise NotFound("group not found")
    members = unit_groups_repo.members_of([row.id])[row.id] if with_members else None
    return _to_group(row, members)


def find_groups(
    unit_id: str,
    where: Predicate,
    sort_field: str | None = None,
    descending: bool = False,
    offset: int = 0,
    limit: int = 100,
    with_members: bool = True,
) -> tuple[int, list[DirectoryGroup]]:
    """Total and one page of the unit's groups matching ``where``, in a stable order."""
    total, rows = unit_groups_repo.search_groups(
        unit_id, where, sort_field, descending, offset, limit
    )
    members = unit_groups_repo.members_of([r.id for r in rows]) if with_members else {}
    return total, [_to_group(r, members.get(r.id) if with_members else None) for r in rows]


def _to_group(row: UnitGroup, members: list[tuple[str, str]] | None) -> DirectoryGroup:
    return DirectoryGroup(
        id=row.id,
        display_name=row.display_name,
        external_id=row.external_id,
        members=members,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def create_group(unit_id: str, group: DirectoryGroup, actor: Actor) -> DirectoryGroup:
    """Create a group with its initial members (users of this unit only)."""
    group = _validated(group)
    members = set(_accounts_of(unit_id, group.member_ids).values())
    with scim_repo.atomic():
        row = UnitGroup(unit_id=unit_id, display_name=group.display_name,
                        external_id=group.external_id)
        scim_repo.add(row)
        scim_repo.flush()
        unit_groups_repo.add_members(row.id, members)
        scim_repo.flush()
        sync_roles(unit_id, members, actor.name)
        audit.record(actor.name, "group.created", row.id,
                     {"unit_id": unit_id, "members_added": len(members)})
        group_id = row.id
    return get_group(unit_id, group_id)


def update_group(
    unit_id: str,
    group_id: str,
    change: Callable[[DirectoryGroup], DirectoryGroup],
    actor: Actor,
    if_match: int | None = None,
    with_members: bool = True,
) -> DirectoryGroup:
    """Apply ``change`` (current -> desired group, members included) without losing
    concurrent changes; returns the group as stored."""
    for _attempt in attempts():
        current = get_group(unit_id, group_id)
        if if_match is not None and current.version != if_match:
            raise PreconditionFailed("the group was changed since it was read")
        desired = _validated(change(copy.deepcopy(current)))
        try:
            with scim_repo.atomic():
                if not _write_group(unit_id, current, desired, actor):
                    raise _Retry()
        except _Retry:
            continue
        except scim_repo.DuplicateRow:
            raise Conflict("concurrent membership change; retry") from None
        return get_group(unit_id, group_id, with_members)
    raise Busy("the group is being changed concurrently; retry")


def _write_group(
    unit_id: str, cur: DirectoryGroup, des: DirectoryGroup, actor: Actor
) -> bool:
    old, new = set(cur.member_ids), set(des.member_ids) if des.members is not None else None
    added_ids = (new - old) if new is not None else set()
    removed_ids = (old - new) if new is not None else set()
    current = scim_repo.accounts_of_records(unit_id, old)
    added = set(_accounts_of(unit_id, added_ids).values())
    removed = {current[i] for i in removed_ids if i in current}
    old = set(current.values())
    values: dict[str, str | None] = {}
    if des.display_name != cur.display_name:
        values["display_name"] = des.display_name
    if des.external_id != cur.external_id:
        values["external_id"] = des.external_id
    if not values and not added and not removed:
        return True
    if not unit_groups_repo.bump_group(cur.id, cur.version, values):
        return False
    unit_groups_repo.add_members(cur.id, added)
    unit_groups_repo.remove_members(cur.id, removed)
    scim_repo.flush()
    affected = old | added if "display_name" in values else added | removed
    sync_roles(unit_id, affected, actor.name)
    audit.record(
        actor.name,
        "group.updated",
        cur.id,
        {
            "unit_id": unit_id,
            "fields": sorted(values),
            "members_added": len(added),
            "members_removed": len(removed),
        },
    )
    return True


def delete_group(unit_id: str, group_id: str, actor: Actor, if_match: int | None = None) -> None:
    """Delete a group; its members lose the roles it gave them."""
    current = get_group(unit_id, group_id)
    if if_match is not None and current.version != if_match:
        raise PreconditionFailed("the group was changed since it was read")
    with scim_repo.atomic():
        unit_groups_repo.delete_group(group_id)
        scim_repo.flush()
        sync_roles(
            unit_id,
            scim_repo.accounts_of_records(unit_id, current.member_ids).values(),
            actor.name,
        )
        audit.record(actor.name, "group.deleted", group_id,
                     {"unit_id": unit_id, "members": len(current.member_ids)})


def _validated(group: DirectoryGroup) -> DirectoryGroup:
    name = (group.display_name or "").strip() if isinstance(group.display_name, str) else ""
    if not name:
        raise InvalidValue("displayName is required")
    if len(name) > NAME_LENGTH:
        raise InvalidValue(f"displayName is too long (at most {NAME_LENGTH} characters)")
    group.display_name = name
    if group.external_id is not None:
        group.external_id = group.external_id.strip()[:200] or None
    return group


def _accounts_of(unit_id: str, ids: Iterable[str]) -> dict[str, str]:
    """The account ids of the unit's users with these SCIM ids (members are named by
    SCIM id, stored by account); :class:`InvalidValue` for any id the unit does not
    provision."""
    wanted = set(ids)
    found = scim_repo.accounts_of_records(unit_id, wanted)
    unknown = wanted - set(found)
    if unknown:
        raise InvalidValue(f"member not found: {sorted(unknown)[0]}")
    return found


# -- roles ---------------------------------------------------------------------------


def sync_roles(
    unit_id: str,
    account_ids: Iterable[str],
    actor_name: audit.Actor | str,
    also_managed: set[str] | None = None,
) -> None:
    """Recompute the managed roles of these accounts' accesses to the unit from
    their group memberships (staged in the current transaction)."""
    rules = unit_groups_repo.role_rules(unit_id)
    managed = {r.role for r in rules} | (also_managed or set())
    if not managed:
        return
    for account_id in set(account_ids):
        access = accesses.find(account_id, unit_id)
        if access is None:
            continue
        names = unit_groups_repo.group_names_of(unit_id, account_id)
        granted = [r.role for r in rules if r.group_name in names]
        kept = [r for r in access.roles or [] if r not in managed]
        roles = kept + sorted(set(granted) - set(kept))
        if accesses.set_roles(access, roles):
            audit.record(actor_name, "membership.roles_synced", account_id,
                         {"unit_id": unit_id, "roles": roles})


def role_rules(unit_id: str) -> list[GroupRoleRule]:
    """The unit's group-to-role rules, by group name."""
    return list(unit_groups_repo.role_rules(unit_id))


def add_role_rule(
    unit_id: str, group_name: str, role: str, actor_name: audit.Actor | str
) -> GroupRoleRule:
    """Members of groups named ``group_name`` get ``role`` (a base role or one of the
    unit's permission groups, :func:`idp.units.registry.roles_for`); applied to members now."""
    name, role = group_name.strip().lower(), role.strip()
    if not name or len(name) > NAME_LENGTH:
        raise InvalidValue("a group name is required (at most 256 characters)")
    try:
        units.validate_roles(units.get(unit_id), [role])
    except units.UnitError as exc:
        raise InvalidValue(str(exc)) from None
    existing = unit_groups_repo.role_rule(unit_id, name, role)
    if existing is not None:
        return existing
    with scim_repo.atomic():
        rule = GroupRoleRule(unit_id=unit_id, group_name=name, role=role)
        scim_repo.add(rule)
        scim_repo.flush()
        members = unit_groups_repo.member_ids_of_groups_named(unit_id, [name])
        sync_roles(unit_id, members, actor_name)
        audit.record(actor_name, "group_role_rule.added", unit_id, {"group": name, "role": role},
                     unit_id=unit_id)
    return rule


def remove_role_rule(
    unit_id: str, group_name: str, role: str, actor_name: audit.Actor | str
) -> bool:
    """Drop a rule; members lose the role unless another rule still gives it."""
    name = group_name.strip().lower()
    rule = unit_groups_repo.role_rule(unit_id, name, role)
    if rule is None:
        return False
    with scim_repo.atomic():
        unit_groups_repo.delete_role_rule(rule)
        scim_repo.flush()
        members = unit_groups_repo.member_ids_of_groups_named(unit_id, [name])
        sync_roles(unit_id, members, actor_name, {role})
        audit.record(actor_name, "group_role_rule.removed", unit_id,
                     {"group": name, "role": role}, unit_id=unit_id)
    return True
