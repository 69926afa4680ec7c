"""``idp audit list``: read the audit log in sequence order, resumable from a cursor
(``docs/operations.md``, exporting the audit log)."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from idp import audit
from idp.units import registry as units


@click.group("audit")
def audit_group() -> None:
    """The audit log."""


@audit_group.command("list")
@click.option("--unit", "unit_ref", default=None,
              help="Only events concerning this business unit (id or slug).")
@click.option("--after", "cursor", type=click.IntRange(min=0), default=0, show_default=True,
              help="Only events with a sequence number above this cursor.")
@click.option("--limit", type=click.IntRange(1, audit.MAX_PAGE), default=100,
              show_default=True, help="At most this many events.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: events and next_cursor.")
@with_appcontext
def list_command(unit_ref: str | None, cursor: int, limit: int, as_json: bool) -> None:
    """Events after --after in sequence order; run again with --after set to the
    printed next cursor to continue (no committed event is skipped)."""
    unit_id = None
    if unit_ref is not None:
        found = units.find(unit_ref)
        unit_id = found.id if found is not None else unit_ref  # events outlive units
    events, next_cursor = audit.since(cursor, limit, unit_id)
    if as_json:
        click.echo(json.dumps({"events": [audit.describe(e) for e in events],
                               "next_cursor": next_cursor}))
        return
    for row in events:
        actor = f"{row.actor_kind}:{row.actor_id}" if row.actor_id else row.actor_kind
        behalf = f" for {row.on_behalf_of}" if row.on_behalf_of else ""
        details = json.dumps(row.details or {}, sort_keys=True)
        click.echo(
            f"{row.seq}\t{row.at.isoformat()}\t{actor}{behalf}\t{row.unit_id or '-'}\t"
            f"{row.action}\t{row.target or '-'}\t{details}"
        )
    click.echo(f"next cursor: {next_cursor}", err=True)


@audit_group.command("export")
@click.option("--unit", "unit_ref", default=None,
              help="Only the events of this business unit and its sub-units.")
@click.option("--after", "cursor", type=click.IntRange(min=0), default=0, show_default=True,
              help="Only events with a sequence number above this cursor.")
@with_appcontext
def export_command(unit_ref: str | None, cursor: int) -> None:
    """Every committed event after --after as JSON Lines on stdout (for a SIEM). Each
    line carries its `seq`: resume with --after set to the last line's seq."""
    unit_ids = None
    if unit_ref is not None:
        found = units.find(unit_ref)
        unit_id = found.id if found is not None else unit_ref  # events outlive units
        unit_ids = {unit_id, *units.descendant_ids(unit_id)}
    while True:
        rows = audit.search(cursor, audit.MAX_PAGE, unit_ids)
        for row in rows:
            click.echo(json.dumps(audit.describe(row), separators=(",", ":")))
        if len(rows) < audit.MAX_PAGE:
            return
        cursor = rows[-1].seq
