"""``idp demo``: seed the development demo (what ``make run`` uses)."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from idp.services import settings


@click.command("demo")
@click.option(
    "--employee-email",
    default="employee@acme-demo.example",
    show_default=True,
    help="Make this account (if it exists) a member of the demo unit.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def demo_command(employee_email: str, as_json: bool) -> None:
    """Seed (idempotently) the demo company unit "Acme Demo GmbH" with two profile
    fields and the demo merchant client, printing its client_id and a fresh secret."""
    from idp.config import demo  # imported on use: the CLI must load without the OIDC parts

    result = demo.seed(employee_email)
    if as_json:
        click.echo(json.dumps(result.as_dict()))
        return
    unit_state = "created" if result.unit_created else "present"
    click.echo(f"demo unit {demo.UNIT_NAME} ({result.unit_slug}): {unit_state}")
    click.echo(
        f"demo merchant client {demo.CLIENT_NAME}: "
        f"{'created' if result.client_created else 'present, new secret issued'}"
    )
    click.echo(f"  client_id:     {result.client_id}")
    click.echo(f"  client_secret: {result.client_secret}")
    click.echo(f"  redirect_uri:  {result.redirect_uri}")
    membership = {
        "missing": f"no account {employee_email} yet: addresses @{result.domain} join the "
        "demo unit as employees at their first sign-in",
        "created": f"{employee_email} is now a member of the demo unit",
        "present": f"{employee_email} is a member of the demo unit",
    }[result.membership]
    click.echo(membership)
    click.echo("")
    click.echo("Try it:")
    click.echo(f"  1. open {result.authorize_url}")
    click.echo(f"  2. sign in as {employee_email} (any address works)")
    click.echo("  3. the one-time code is printed on the server console and shown at /dev/outbox")
    click.echo(
        "  4. after consent the browser lands on the redirect URI with ?code=...; exchange it:"
    )
    click.echo(
        f"     curl -u '{result.client_id}:{result.client_secret}' "
        f"-d grant_type=authorization_code -d code=CODE "
        f"-d redirect_uri={result.redirect_uri} {settings().issuer.rstrip('/')}/token"
    )
