"""``idp rights permissions|check``, ``idp groups list|set|remove`` and
``idp staff add|remove|list|assign|unassign``.

The rules live in :mod:`idp.rights`; this module parses and reports. With ``--json``
each command prints one JSON document; a refused change prints
``{"error": code, "error_description": ...}`` and exits 1. ``idp rights check`` exits
0 for yes, 1 for no, 2 for a question it cannot answer (unknown account, unit or
permission).
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from idp.cli.units import actor, echo_json, fail


@click.group("rights")
def rights_group() -> None:
    """The permission catalogue and who may do what."""


@rights_group.command("permissions")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def permissions_command(as_json: bool) -> None:
    """List the permission catalogue with the built-in roles granting each."""
    from idp.rights import catalogue

    rows = catalogue.describe()
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        roles = ", ".join(row["roles"]) or "(explicit grant only)"
        click.echo(f"{row['name']:<20} {row['description']}")
        click.echo(f"{'':<20} roles: {roles}")


@rights_group.command("check")
@click.option("--account", "email", required=True, help="The account's e-mail address.")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.option("--permission", required=True, help="A catalogue permission.")
@click.option(
    "--as", "kind", type=click.Choice(["account", "staff"]), default="account",
    show_default=True, help="Ask for the account as a member, or as operator staff.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def check_command(
    email: str, unit_ref: str, permission: str, kind: str, as_json: bool
) -> None:
    """Print yes (exit 0) or no (exit 1): may ACCOUNT do PERMISSION in UNIT?"""
    from idp.accounts import lifecycle as accounts
    from idp.rights import Actor, UnknownPermission, may, permissions
    from idp.units import registry as units

    try:
        account = accounts.by_email(accounts.normalise_email(email))
    except accounts.InvalidEmail:
        account = None
    unit = units.find(unit_ref)
    problem = None
    if account is None:
        problem = f"no account {email!r}"
    elif unit is None:
        problem = f"no business unit {unit_ref!r}"
    if problem is not None or account is None or unit is None:
        if as_json:
            echo_json({"error": "not_found", "error_description": problem})
            raise SystemExit(2)
        raise click.UsageError(problem or "not found")
    who = Actor.staff(account.id) if kind == "staff" else Actor.account(account.id)
    try:
        allowed = may(who, permission, unit.id)
    except UnknownPermission as exc:
        if as_json:
            echo_json({"error": exc.code, "error_description": str(exc)})
            raise SystemExit(2) from exc
        raise click.UsageError(str(exc)) from exc
    if as_json:
        echo_json({
            "account": account.email, "unit": unit.slug, "permission": permission,
            "as": kind, "allowed": allowed, "permissions": sorted(permissions(who, unit.id)),
        })
    else:
        click.echo("yes" if allowed else "no")
    raise SystemExit(0 if allowed else 1)


@click.group("groups")
def groups_group() -> None:
    """A unit's custom permission groups (usable as roles)."""


@groups_group.command("list")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def groups_list(unit_ref: str, as_json: bool) -> None:
    """List the unit's custom permission groups and what they grant."""
    from idp.rights import RightsError, groups

    try:
        rows = [groups.describe(g) for g in groups.list_groups(unit_ref)]
    except RightsError as exc:
        fail(as_json, exc.code, str(exc))
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']}: {', '.join(row['permissions']) or '(no permissions)'}")


@groups_group.command("set")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.argument("name")
@click.option("--permission", "perms", multiple=True, help="Catalogue permission (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def groups_set(unit_ref: str, name: str, perms: tuple[str, ...], as_json: bool) -> None:
    """Create the group NAME or replace its permissions."""
    from idp.rights import RightsError, groups

    try:
        row = groups.set_group(unit_ref, name, perms, actor=actor())
    except RightsError as exc:
        fail(as_json, exc.code, str(exc))
    data = groups.describe(row)
    if as_json:
        echo_json(data)
    else:
        click.echo(f"{data['name']}: {', '.join(data['permissions']) or '(no permissions)'}")


@groups_group.command("remove")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def groups_remove(unit_ref: str, name: str, as_json: bool) -> None:
    """Remove the group NAME (refused while a member holds it)."""
    from idp.rights import RightsError, groups

    try:
        groups.remove_group(unit_ref, name, actor=actor())
    except RightsError as exc:
        fail(as_json, exc.code, str(exc))
    if as_json:
        echo_json({"name": name, "removed": True})
    else:
        click.echo(f"removed {name}")


@click.group("staff")
def staff_group() -> None:
    """The operator's own people and the customers they look after."""


@staff_group.command("add")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def staff_add(email: str, as_json: bool) -> None:
    """Make the account EMAIL a staff member."""
    from idp.rights import RightsError, staff

    try:
        row = staff.add(email, actor=actor())
    except RightsError as exc:
        fail(as_json, exc.code, str(exc))
    if as_json:
        echo_json({"account_id": row.account_id, "email": email.strip().lower(), "staff": True})
    else:
        click.echo(f"{email.strip().lower()} is staff")


@staff_group.command("remove")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def staff_remove(email: str, as_json: bool) -> None:
    """End EMAIL's staff membership and all its assignments."""
    from idp.rights import RightsError, staff

    try:
        staff.remove(email, actor=actor())
    except RightsError as exc:
        fail(as_json, exc.code, str(exc))
    if as_json:
        echo_json({"email": email.strip().lower(), "staff": False})
    else:
        click.echo(f"{email.strip().lower()} is no longer staff")


@staff_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def staff_list(as_json: bool) -> None:
    """List the staff members and their assignments."""
    from idp.rights import staff

    rows = staff.describe_all()
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(row["email"])
        for a in row["assignments"]:
            extra = f" ({', '.join(a['permissions'])})" if a["permissions"] else ""
            click.echo(f"    {a['customer']}: {a['as']}{extra}")


@staff_group.command("assign")
@click.option("--account", "email", required=True, help="The staff member's e-mail address.")
@click.option("--customer", required=True, help="A top-level unit's id or slug.")
@click.option(
    "--as", "kind", type=click.Choice(["administrator", "processor"]), required=True,
)
@click.option("--permission", "perms", multiple=True,
              help="Catalogue permission of a processor (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def staff_assign(
    email: str, customer: str, kind: str, perms: tuple[str, ...], as_json: bool
) -> None:
    """Assign a staff member to a customer as administrator or processor."""
    from idp.rights import RightsError, staff
    from idp.units import registry as units

    try:
        row = staff.assign(email, customer, kind, perms, actor=actor())
    except RightsError as exc:
        fail(as_json, exc.code, str(exc))
    unit = units.find(row.unit_id)
    data = {
        "email": email.strip().lower(), "customer": unit.slug if unit else row.unit_id,
        "as": row.kind, "permissions": list(row.permissions or []),
    }
    if as_json:
        echo_json(data)
    else:
        click.echo(f"{data['email']} -> {data['customer']}: {data['as']}")


@staff_group.command("unassign")
@click.option("--account", "email", required=True, help="The staff member's e-mail address.")
@click.option("--customer", required=True, help="A top-level unit's id or slug.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def staff_unassign(email: str, customer: str, as_json: bool) -> None:
    """End a staff member's assignment to a customer."""
    from idp.rights import RightsError, staff

    try:
        staff.unassign(email, customer, actor=actor())
    except RightsError as exc:
        fail(as_json, exc.code, str(exc))
    if as_json:
        echo_json({"email": email.strip().lower(), "customer": customer, "assigned": False})
    else:
        click.echo(f"{email.strip().lower()} no longer assigned to {customer}")
