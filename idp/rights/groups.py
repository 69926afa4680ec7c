"""Custom permission groups of a unit: create, change, remove, list.

A custom group is a role name members of the unit can hold (besides the built-in
roles) that grants the listed catalogue permissions in the unit and its sub-units
(:mod:`idp.rights.authorization`). Its name also reaches merchants as a role in the
``org`` claims and SAML attributes, like the built-in roles. Every change is
validated first and written in one transaction with its audit event.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from idp import audit
from idp.rights import catalogue
from idp.rights.errors import RightsError
from idp.store import rights_repo, units_repo
from idp.store.models import PermissionGroup, Unit
from idp.store.unit_of_work import atomic
from idp.units import registry as units


def _unit(ref: str) -> Unit:
    try:
        return units.get(ref)
    except units.UnitError as exc:
        raise RightsError(exc.code, str(exc)) from exc


def _name(name: Any) -> str:
    try:
        return units.validate_groups([name])[0]
    except units.UnitError as exc:
        raise RightsError(exc.code, str(exc)) from exc


def list_groups(unit_ref: str) -> list[PermissionGroup]:
    """The unit's custom permission groups, sorted by name."""
    return rights_repo.groups(_unit(unit_ref).id)


def set_group(
    unit_ref: str, name: str, permissions: Iterable[Any], actor: str = "system"
) -> PermissionGroup:
    """Create the unit's group ``name`` or replace its permissions; returns it.
    Refuses a base-role or malformed name (``invalid_group``) and a permission
    outside the catalogue (``unknown_permission``). Unchanged: no write, no event."""
    unit = _unit(unit_ref)
    clean = _name(name)
    granted = catalogue.validate(permissions)
    row = rights_repo.group(unit.id, clean)
    if row is not None and sorted(row.permissions or []) == granted:
        return row
    action = "rights.group.update" if row is not None else "rights.group.create"
    if row is None:
        row = PermissionGroup(unit_id=unit.id, name=clean)
    row.permissions = granted
    audit.record(actor, action, f"{unit.slug}/{clean}", {"permissions": granted})
    try:
        with atomic():
            rights_repo.stage(row)
    except rights_repo.Conflict as exc:
        raise RightsError("group_taken", f"permission group {clean!r} exists") from exc
    return row


def remove_group(unit_ref: str, name: str, actor: str = "system") -> None:
    """Remove the unit's group ``name``; refused while a member holds it as a role
    (``group_in_use``), ``not_found`` when there is none."""
    unit = _unit(unit_ref)
    row = rights_repo.group(unit.id, name) if isinstance(name, str) else None
    if row is None:
        raise RightsError("not_found", f"unit {unit.slug!r} has no permission group {name!r}")
    if name in units_repo.roles_held(unit.id):
        raise RightsError("group_in_use", f"permission group {name!r} is still held by members")
    audit.record(actor, "rights.group.remove", f"{unit.slug}/{name}")
    with atomic():
        rights_repo.delete(row)


def describe(row: PermissionGroup) -> dict[str, Any]:
    """A group as plain data for the CLI and admin views."""
    return {"name": row.name, "unit_id": row.unit_id, "permissions": list(row.permissions or [])}
