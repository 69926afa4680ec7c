"""``idp scim-tokens create|list|revoke`` and ``idp scim-group-roles add|remove|list``.

A SCIM token is printed once, at creation; Unitgate keeps only its keyed hash.
Group role rules map the name of a group an HR system pushes to a unit role
(``docs/scim.md``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
from flask.cli import with_appcontext

from idp.provisioning import scim_tokens, unit_groups
from idp.provisioning.service import ProvisioningError
from idp.store.models import ScimToken

ACTOR = "cli"


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def describe(row: ScimToken) -> dict[str, Any]:
    """Public facts about a token (never the token)."""
    return {
        "id": row.id,
        "unit_id": row.unit_id,
        "name": row.name,
        "created_at": _when(row.created_at),
        "last_used_at": _when(row.last_used_at),
        "revoked_at": _when(row.revoked_at),
    }


def _unit_or_fail(ref: str) -> str:
    try:
        return scim_tokens.unit(ref).id
    except scim_tokens.UnknownUnit:
        raise click.ClickException(f"no business unit {ref!r}") from None


@click.group("scim-tokens")
def scim_tokens_group() -> None:
    """SCIM bearer tokens of business units: create, list, revoke."""


@scim_tokens_group.command("create")
@click.option("--unit", "unit_ref", required=True, help="Business unit id or slug.")
@click.option("--name", default="SCIM", show_default=True, help="Shown in the audit log.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def create_command(unit_ref: str, name: str, as_json: bool) -> None:
    """Create a token for a unit and print it once."""
    _unit_or_fail(unit_ref)
    row, token = scim_tokens.create(unit_ref, name, ACTOR)
    if as_json:
        click.echo(json.dumps({**describe(row), "token": token}))
        return
    click.echo(f"token {row.id} for unit {row.unit_id} ({row.name}):")
    click.echo(token)
    click.echo("Store it now: it is not shown again.")


@scim_tokens_group.command("list")
@click.option("--unit", "unit_ref", required=True, help="Business unit id or slug.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def list_command(unit_ref: str, as_json: bool) -> None:
    """List a unit's tokens with creation, last use and revocation times."""
    _unit_or_fail(unit_ref)
    rows = [describe(r) for r in scim_tokens.listing(unit_ref)]
    if as_json:
        click.echo(json.dumps({"tokens": rows}))
        return
    if not rows:
        click.echo("no SCIM tokens")
    for r in rows:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        click.echo(
            f"{r['id']}  {r['name']:20}  created {r['created_at']}  "
            f"last used {r['last_used_at'] or 'never'}  {state}"
        )


@scim_tokens_group.command("revoke")
@click.argument("token_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def revoke_command(token_id: str, as_json: bool) -> None:
    """Revoke a token; requests with it get 401 from now on."""
    row = scim_tokens.revoke(token_id, ACTOR)
    if row is None:
        raise click.ClickException(f"no SCIM token {token_id!r}")
    if as_json:
        click.echo(json.dumps(describe(row)))
    else:
        click.echo(f"revoked {row.id} ({row.name})")


@click.group("scim-group-roles")
def group_roles_group() -> None:
    """Rules giving unit roles to members of provisioned groups."""


@group_roles_group.command("add")
@click.option("--unit", "unit_ref", required=True, help="Business unit id or slug.")
@click.option("--group", "group_name", required=True, help="Group display name.")
@click.option("--role", required=True, help="Role (or permission group) in the unit.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def add_rule_command(unit_ref: str, group_name: str, role: str, as_json: bool) -> None:
    """Members of groups named GROUP (any case) get ROLE; applied to members now."""
    unit_id = _unit_or_fail(unit_ref)
    try:
        rule = unit_groups.add_role_rule(unit_id, group_name, role, ACTOR)
    except ProvisioningError as exc:
        raise click.ClickException(str(exc)) from None
    out = {"id": rule.id, "unit_id": unit_id, "group": rule.group_name, "role": rule.role}
    click.echo(json.dumps(out) if as_json else f"{rule.group_name} -> {rule.role}")


@group_roles_group.command("remove")
@click.option("--unit", "unit_ref", required=True, help="Business unit id or slug.")
@click.option("--group", "group_name", required=True, help="Group display name.")
@click.option("--role", required=True, help="Role in the unit.")
@with_appcontext
def remove_rule_command(unit_ref: str, group_name: str, role: str) -> None:
    """Remove a rule; members lose the role unless another rule gives it."""
    unit_id = _unit_or_fail(unit_ref)
    if not unit_groups.remove_role_rule(unit_id, group_name, role, ACTOR):
        raise click.ClickException("no such rule")
    click.echo(f"removed {group_name.strip().lower()} -> {role}")


@group_roles_group.command("list")
@click.option("--unit", "unit_ref", required=True, help="Business unit id or slug.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def list_rules_command(unit_ref: str, as_json: bool) -> None:
    """List a unit's group role rules."""
    unit_id = _unit_or_fail(unit_ref)
    rules = [{"group": r.group_name, "role": r.role} for r in unit_groups.role_rules(unit_id)]
    if as_json:
        click.echo(json.dumps({"rules": rules}))
        return
    for r in rules:
        click.echo(f"{r['group']} -> {r['role']}")
