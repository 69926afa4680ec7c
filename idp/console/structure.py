"""A unit's roles and permission groups, and its sub-units, in the console
(``units.manage``). Services: :mod:`idp.rights.groups` (create, change, remove a
group; a group still held is not removed) and :func:`idp.units.registry.create`
(a sub-unit below this one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from idp.console import messages, nav
from idp.console.accesses import clean, role_label
from idp.console.blueprint import bp
from idp.console.guard import UnitPage, unit_page
from idp.rights import NotPermitted, RightsError, require_holds
from idp.rights import groups as permission_groups
from idp.rights.catalogue import BUILT_IN, PERMISSIONS
from idp.units import registry as units

MAX_NAME = 200
PERMISSION_LABELS: dict[str, Any] = {
    "users.read": _l("See the unit's people, their accesses and roles."),
    "users.manage": _l("Invite, change, suspend and remove the unit's people and their roles."),
    "units.manage": _l("Change the unit, create its sub-units, define permission groups."),
    "domains.manage": _l("Add, verify and remove the unit's e-mail domains."),
    "connectors.manage": _l("Configure the unit's sign-in connectors."),
    "scim.manage": _l("Issue and revoke the unit's SCIM tokens."),
    "ldap.manage": _l("Configure the unit's LDAP directory and its synchronisation."),
    "budgets.manage": _l("Set and change the unit's budgets."),
    "approvals.decide": _l("Approve or reject the unit's orders awaiting approval."),
    "orders.create": _l("Place orders at merchants on the unit's account."),
    "documents.read": _l("Read the unit's invoices, delivery notes and other documents."),
    "audit.read": _l("Read the unit's audit log."),
    "webhooks.manage": _l("Configure the unit's webhooks."),
    "exports.read": _l("Export the unit's data."),
    "impersonate": _l("Act as one of the unit's people (never one with more rights)."),
}

nav.register("groups", _l("Roles and groups"), "console.groups", "units.manage", order=20)
nav.register("sub_units", _l("Sub-units"), "console.sub_units", "units.manage", order=30)


@bp.get("/units/<unit>/groups")
@unit_page("units.manage")
def groups(page: UnitPage) -> Response:
    """The built-in roles with their permissions, the unit's own permission groups,
    and the form that creates a group or changes one (same name)."""
    return page.render(
        "console/groups.html", current="groups", built_in=BUILT_IN, role_label=role_label,
        rows=permission_groups.list_groups(page.unit.id), permissions=list(PERMISSIONS),
        permission_labels=PERMISSION_LABELS,
    )


def _change_group(
    page: UnitPage, change: Callable[[str], object], done: Callable[[str], str], field: str
) -> Response:
    """Apply ``change`` to the group named in the form; the notice ``done(name)``, or
    the refusal at ``field`` (the form's name field, or the list)."""
    name = clean(request.form.get("name"), 64)
    try:
        change(name)
    except RightsError as exc:
        page.remember(errors={field: messages.text(exc.code)}, values={"name": name})
        return page.see_other("console.groups", anchor="group-form" if field == "name" else field)
    page.remember(notice=done(name))
    return page.see_other("console.groups")


@bp.post("/units/<unit>/groups")
@unit_page("units.manage")
def set_group(page: UnitPage) -> Response:
    """Create the group ``name`` with the ticked ``permissions``, or replace the
    permissions of the group of that name."""
    chosen = [p for p in request.form.getlist("permissions") if p in PERMISSIONS]

    def change(name: str) -> object:
        try:  # nobody puts in a group a permission they do not hold themselves
            require_holds(page.actor, page.unit.id, chosen)
        except NotPermitted as exc:
            raise RightsError("forbidden", str(exc)) from exc
        return permission_groups.set_group(
            page.unit.id, name, chosen, actor=page.actor.audit_name())

    return _change_group(
        page,
        change,
        lambda name: gettext("The permission group %(name)s was saved.", name=name),
        "name",
    )


@bp.post("/units/<unit>/groups/remove")
@unit_page("units.manage")
def remove_group(page: UnitPage) -> Response:
    """Remove the group ``name`` (refused while members hold it)."""
    return _change_group(
        page,
        lambda name: permission_groups.remove_group(
            page.unit.id, name, actor=page.actor.audit_name()),
        lambda name: gettext("The permission group %(name)s was removed.", name=name),
        "groups",
    )


@bp.get("/units/<unit>/sub-units")
@unit_page("units.manage")
def sub_units(page: UnitPage) -> Response:
    """The sub-units directly below this unit (each a link to its own console) and
    the form that creates one."""
    return page.render(
        "console/sub_units.html", current="sub_units",
        rows=sorted(units.children(page.unit), key=lambda u: u.name.casefold()),
    )


@bp.post("/units/<unit>/sub-units")
@unit_page("units.manage")
def create_sub_unit(page: UnitPage) -> Response:
    """Create a sub-unit ``name`` below this unit."""
    name = clean(request.form.get("name"), MAX_NAME + 1)
    try:
        made = units.create(name, parent=page.unit.id, actor=page.actor.audit_name())
    except units.UnitError as exc:
        code = "invalid_name" if exc.code.startswith("invalid_") else exc.code
        page.remember(errors={"name": messages.text(code)}, values={"name": name})
        return page.see_other("console.sub_units", anchor="sub-unit-form")
    page.remember(notice=gettext("The sub-unit %(name)s was created.", name=made.name))
    return page.see_other("console.sub_units")
