"""``idp admin-clients create|list|delete``: clients of the administration API.

``create --unit U`` registers a client-credentials client that acts for unit U and
its sub-units, ``create --operator`` one that acts for the whole operator. The
secret is printed once (``--json``: ``{"client_id", "client_secret", "unit_id",
"token_endpoint", "scope"}``) and stored only as a keyed hash.
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from idp.cli.units import actor, echo_json, fail


@click.group("admin-clients")
def admin_clients_group() -> None:
    """Clients of the administration API (/api/v1)."""


@admin_clients_group.command("create")
@click.option("--unit", "unit_ref", help="Act for this unit (id or slug) and its sub-units.")
@click.option("--operator", is_flag=True, help="Act for the whole operator.")
@click.option("--name", help="A name for the client (default: from the unit).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def create_command(unit_ref: str | None, operator: bool, name: str | None, as_json: bool) -> None:
    """Register an admin client and print its id and secret (shown once)."""
    from idp.rights import RightsError
    from idp.rights.admin_clients import SCOPE, create
    from idp.services import settings

    if bool(unit_ref) == operator:
        fail(as_json, "invalid_request", "give exactly one of --unit U and --operator")
    try:
        made = create(None if operator else unit_ref, name, actor())
    except RightsError as exc:
        fail(as_json, exc.code, str(exc))
    data = {
        "client_id": made.client_id,
        "client_secret": made.client_secret,
        "name": made.name,
        "unit_id": made.unit_id,
        "scope": SCOPE,
        "token_endpoint": settings().issuer.rstrip("/") + "/token",
    }
    if as_json:
        echo_json(data)
        return
    click.echo(f"client_id:     {made.client_id}")
    click.echo(f"client_secret: {made.client_secret}  (shown once)")
    click.echo(f"acts for:      {made.unit_id or 'the operator'}")


@admin_clients_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_command(as_json: bool) -> None:
    """List the admin clients and what they act for."""
    from idp.rights.admin_clients import describe_all

    rows = describe_all()
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['client_id']}  {row['unit'] or '(operator)'}  {row['name']}")


@admin_clients_group.command("delete")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def delete_command(client_id: str, as_json: bool) -> None:
    """Delete an admin client; its tokens stop working at once."""
    from idp.rights.admin_clients import delete

    if not delete(client_id, actor()):
        fail(as_json, "not_found", f"no admin client {client_id!r}")
    if as_json:
        echo_json({"deleted": client_id})
    else:
        click.echo(f"deleted {client_id}")
