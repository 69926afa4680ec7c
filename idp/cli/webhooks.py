"""``idp webhooks add|list|deliveries|redeliver|rotate-secret|remove`` (the webhook
endpoints of a unit, ``--unit``, or of a merchant client, ``--client``;
``docs/webhooks.md``) and ``idp exports signins`` (a unit's
sign-ins as CSV or JSON Lines for systems that import files). The commands act as
the operator (``system``); with ``--json`` each prints one JSON document, a refusal
``{"error": code, "error_description": ...}`` with exit status 1."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from itertools import chain
from typing import Any, TextIO

import click
from flask.cli import with_appcontext

from idp.cli.units import echo_json, fail
from idp.web.spreadsheet import csv_lines


def _unit_id(ref: str, as_json: bool) -> str:
    from idp.units import registry as units

    unit = units.find(ref)
    if unit is None:
        fail(as_json, "not_found", f"no business unit {ref!r}")
    return unit.id


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}


def _endpoint(endpoint_id: str, as_json: bool) -> Any:
    from idp.store import webhooks_repo

    row = webhooks_repo.endpoint(endpoint_id)
    if row is None:
        fail(as_json, "not_found", f"no webhook endpoint {endpoint_id!r}")
    return row


@click.group("webhooks")
def webhooks_group() -> None:
    """Webhook endpoints of business units and merchant clients (Standard Webhooks)."""


def _owner(unit_ref: str | None, client_id: str | None, as_json: bool) -> None:
    if (unit_ref is None) == (client_id is None):
        fail(as_json, "invalid_request", "give exactly one of --unit and --client")


@webhooks_group.command("add")
@click.option("--unit", "unit_ref", default=None, help="Unit id or slug.")
@click.option("--client", "client_id", default=None,
              help="A merchant client's client_id (purchase.* events only).")
@click.option("--url", required=True, help="The receiver (https://).")
@click.option("--event", "events", multiple=True, help="An event type; repeat. None: all.")
@click.option("--description", default="", help="A note for the administrators.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with the secret).")
@with_appcontext
def add_command(unit_ref: str | None, client_id: str | None, url: str,
                events: tuple[str, ...], description: str, as_json: bool) -> None:
    """Add an endpoint of a unit (--unit) or of a merchant client (--client, which
    hears the purchase.* events of its own purchases only); prints its id and its
    signing secret (shown only now)."""
    from idp.rights import SYSTEM
    from idp.webhooks import endpoints

    _owner(unit_ref, client_id, as_json)
    try:
        if client_id is not None:
            made = endpoints.create_for_client(client_id, url, list(events) or None,
                                               description, SYSTEM)
        else:
            assert unit_ref is not None
            made = endpoints.create(_unit_id(unit_ref, as_json), url, list(events) or None,
                                    description, SYSTEM)
    except endpoints.UnknownClient:
        fail(as_json, "not_found", f"no client {client_id!r}")
    except endpoints.EndpointRefused as exc:
        fail(as_json, exc.code, exc.detail)
    if as_json:
        echo_json({**_plain(endpoints.describe(made.endpoint)), "secret": made.secret})
        return
    click.echo(f"webhook {made.endpoint.id} -> {made.endpoint.url}")
    click.echo(f"secret (shown only now): {made.secret}")


@webhooks_group.command("list")
@click.option("--unit", "unit_ref", default=None, help="Unit id or slug.")
@click.option("--client", "client_id", default=None, help="A merchant client's client_id.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def list_command(unit_ref: str | None, client_id: str | None, as_json: bool) -> None:
    """The endpoints of a unit or of a merchant client (never their secrets)."""
    from idp.rights import SYSTEM
    from idp.webhooks import endpoints

    _owner(unit_ref, client_id, as_json)
    if client_id is not None:
        try:
            rows = endpoints.list_of_client(client_id, SYSTEM, None, 1000)
        except endpoints.UnknownClient:
            fail(as_json, "not_found", f"no client {client_id!r}")
    else:
        assert unit_ref is not None
        rows = endpoints.list_of(_unit_id(unit_ref, as_json), SYSTEM, None, 1000)
    if as_json:
        echo_json({"webhooks": [_plain(endpoints.describe(r)) for r in rows]})
        return
    for r in rows:
        state = "enabled" if r.enabled else f"disabled ({r.disabled_reason})"
        click.echo(f"{r.id}\t{state}\t{r.url}\t{','.join(r.events or ['*'])}")


@webhooks_group.command("deliveries")
@click.argument("endpoint_id")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def deliveries_command(endpoint_id: str, limit: int, as_json: bool) -> None:
    """The endpoint's newest deliveries with their attempt log."""
    from idp.rights import SYSTEM
    from idp.webhooks import endpoints

    found, logs = endpoints.deliveries(_endpoint(endpoint_id, as_json), SYSTEM, None, limit)
    items = [{
        "id": d.id, "event_type": d.event_type, "status": d.status, "attempts": d.attempts,
        "last_error": d.last_error, "created_at": d.created_at.isoformat(),
        "log": [{"at": a.at.isoformat(), "status_code": a.status_code,
                 "duration_ms": a.duration_ms, "error": a.error} for a in logs[d.id]],
    } for d in found]
    if as_json:
        echo_json({"deliveries": items})
        return
    for i in items:
        click.echo(f"{i['id']}\t{i['event_type']}\t{i['status']}\t{i['attempts']}\t"
                   f"{i['last_error'] or '-'}")


@webhooks_group.command("redeliver")
@click.argument("delivery_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def redeliver_command(delivery_id: str, as_json: bool) -> None:
    """Send a delivery again (same webhook-id) when the delivery loop next runs."""
    from idp.rights import SYSTEM
    from idp.store import webhooks_repo
    from idp.webhooks import endpoints

    row = webhooks_repo.delivery(delivery_id)
    if row is None:
        fail(as_json, "not_found", f"no delivery {delivery_id!r}")
    row = endpoints.redeliver(row, SYSTEM)
    if as_json:
        echo_json({"id": row.id, "status": row.status})
        return
    click.echo(f"delivery {row.id} queued again")


@webhooks_group.command("rotate-secret")
@click.argument("endpoint_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with the secret).")
@with_appcontext
def rotate_command(endpoint_id: str, as_json: bool) -> None:
    """A new signing secret (shown only now); the old one signs as well during the
    overlap (IDP_WEBHOOK_ROTATION_OVERLAP_HOURS)."""
    from idp.rights import SYSTEM
    from idp.webhooks import endpoints

    row = _endpoint(endpoint_id, as_json)
    secret = endpoints.rotate(row, SYSTEM)
    until = row.previous_secret_until.isoformat() if row.previous_secret_until else None
    if as_json:
        echo_json({"id": row.id, "secret": secret, "rotation_overlap_until": until})
        return
    click.echo(f"secret (shown only now): {secret}\nold secret signs until {until}")


@webhooks_group.command("remove")
@click.argument("endpoint_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def remove_command(endpoint_id: str, as_json: bool) -> None:
    """Delete an endpoint with its deliveries."""
    from idp.rights import SYSTEM
    from idp.webhooks import endpoints

    endpoints.delete(_endpoint(endpoint_id, as_json), SYSTEM)
    if as_json:
        echo_json({"id": endpoint_id, "removed": True})
        return
    click.echo(f"webhook {endpoint_id} removed")


@click.group("exports")
def exports_group() -> None:
    """File exports for systems that import files (a cron job calls them)."""


FIELDS = ["at", "id", "account_id", "merchant_id", "unit_id", "protocol", "released"]


def _instant(since: str) -> datetime:
    try:
        start = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter("not an ISO 8601 instant", param_hint="--since") from exc
    return start.replace(tzinfo=UTC) if start.tzinfo is None else start


def _write_table(output: str | None, fmt: str, header: Sequence[str],
                 rows: Iterator[Sequence[object]]) -> None:
    """Stream ``rows`` (cells in ``header`` order) to ``output`` or stdout as CSV
    (spreadsheet-safe: :mod:`idp.web.spreadsheet`) or JSON Lines (one object a row)."""
    out: TextIO = open(output, "w", newline="", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
    try:
        if fmt == "csv":
            for line in csv_lines(chain([header], rows)):
                out.write(line)
        else:
            for row in rows:
                out.write(json.dumps(dict(zip(header, row, strict=True)), default=str,
                                     separators=(",", ":")) + "\n")
    finally:
        if output:
            out.close()


_SINCE = click.option("--since", required=True, help="ISO 8601 instant; UTC when no offset.")
_FORMAT = click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv",
                       show_default=True)
_OUTPUT = click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
                       default=None, help="Write to this file (default: stdout).")


@exports_group.command("signins")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@_SINCE
@_FORMAT
@_OUTPUT
@with_appcontext
def signins_command(unit_ref: str, since: str, fmt: str, output: str | None) -> None:
    """The unit's sign-ins at merchants at or after --since, oldest first, streamed in
    constant memory."""
    from idp.release import signins

    unit_id = _unit_id(unit_ref, False)
    rows = signins.export_rows(unit_id, _instant(since))
    _write_table(output, fmt, FIELDS, ([record.get(k) for k in FIELDS] for record in rows))


@exports_group.command("purchases")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@_SINCE
@click.option("--sub-units", is_flag=True, help="Include the purchases of the units below.")
@_FORMAT
@_OUTPUT
@with_appcontext
def purchases_command(unit_ref: str, since: str, sub_units: bool, fmt: str,
                      output: str | None) -> None:
    """The unit's purchases created at or after --since (every status; newest first),
    streamed in constant memory: the file an expense or accounting system imports."""
    from idp.purchases import listing

    unit_id = _unit_id(unit_ref, False)
    rows = listing.export_rows(unit_id, listing.Filters(since=_instant(since),
                                                        sub_units=sub_units))
    header = next(rows)
    _write_table(output, fmt, [str(h) for h in header], rows)
