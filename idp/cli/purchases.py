"""``idp purchases expire``: the sweep that expires orders whose approval time is over
(they also expire when read). Run it from a timer, e.g. every few minutes."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from idp.cli.units import echo_json


@click.group("purchases")
def purchases_group() -> None:
    """Purchase authorisations (issue 17)."""


@purchases_group.command("expire")
@click.option("--limit", type=click.IntRange(1, 10_000), default=500, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def expire_command(limit: int, as_json: bool) -> None:
    """Expire pending approvals past their time; their orders are refused."""
    from idp.purchases import approvals

    count = approvals.expire_due(limit)
    if as_json:
        echo_json({"expired": count})
    else:
        click.echo(f"expired {count}")
