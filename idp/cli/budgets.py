"""``idp budgets set|list|remove|time-zone``: a unit's budgets (issue 17).

``set --unit U [--access EMAIL | --role R | --group G] --period month --amount
100.00 --currency EUR [--per-order 50.00] [--include-subunits]`` creates or
replaces a budget (without --access/--role/--group: the unit's pool);
``time-zone --unit U Europe/Berlin`` sets the calendar of the unit's periods. The
CLI acts as the operator (every unit); each change is audited as ``cli:<user>``.
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from idp.cli.units import actor, echo_json, fail


@click.group("budgets")
def budgets_group() -> None:
    """Budgets per access, permission group, role or unit."""


@budgets_group.command("set")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.option("--access", "email", help="One person's budget (their e-mail or access id).")
@click.option("--role", help="Each holder of this built-in role.")
@click.option("--group", help="Each holder of this permission group.")
@click.option("--period", type=click.Choice(["month", "quarter", "year"]), required=True)
@click.option("--amount", required=True, help="Decimal amount, e.g. 100.00.")
@click.option("--currency", required=True, help="ISO 4217 code, e.g. EUR.")
@click.option("--per-order", help="Per-order limit, decimal.")
@click.option("--include-subunits", is_flag=True, help="Applies in the sub-units too.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def set_command(
    unit_ref: str, email: str | None, role: str | None, group: str | None, period: str,
    amount: str, currency: str, per_order: str | None, include_subunits: bool, as_json: bool,
) -> None:
    """Create or replace a budget."""
    from idp import audit
    from idp.purchases import budgets
    from idp.rights import SYSTEM, NotPermitted

    given = [(k, v) for k, v in (("access", email), ("role", role), ("group", group)) if v]
    if len(given) > 1:
        fail(as_json, "invalid_request", "give at most one of --access, --role, --group")
    scope, subject = given[0] if given else ("unit", None)
    data = budgets.BudgetInput(scope, subject, period, amount, currency, per_order,
                               include_subunits)
    try:
        row = budgets.set_budget(SYSTEM, unit_ref, data, who=audit.as_actor(actor()))
    except budgets.BudgetError as exc:
        fail(as_json, exc.code, exc.detail)
    except NotPermitted as exc:  # pragma: no cover - the system may everything
        fail(as_json, "forbidden", str(exc))
    shown = budgets.describe(row)
    if as_json:
        echo_json(shown)
        return
    _line(shown)


def _line(b: dict[str, object]) -> None:
    who = b["scope"] if b["subject"] is None else f"{b['scope']} {b['subject']}"
    per_order = f", per order {b['per_order']}" if b["per_order"] else ""
    subs = " (with sub-units)" if b["include_subunits"] else ""
    click.echo(f"{b['id']}  {who}: {b['amount']} {b['currency']} per {b['period']}"
               f"{per_order}{subs}")


@budgets_group.command("list")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_command(unit_ref: str, as_json: bool) -> None:
    """List the unit's own budgets."""
    from idp.purchases import budgets
    from idp.rights import SYSTEM

    try:
        rows = [budgets.describe(r) for r in budgets.list_budgets(SYSTEM, unit_ref, None, 10_000)]
    except budgets.BudgetError as exc:
        fail(as_json, exc.code, exc.detail)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        _line(row)


@budgets_group.command("remove")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.argument("budget_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def remove_command(unit_ref: str, budget_id: str, as_json: bool) -> None:
    """Remove a budget of the unit."""
    from idp import audit
    from idp.purchases import budgets
    from idp.rights import SYSTEM

    try:
        removed = budgets.remove_budget(SYSTEM, unit_ref, budget_id, who=audit.as_actor(actor()))
    except budgets.BudgetError as exc:
        fail(as_json, exc.code, exc.detail)
    if not removed:
        fail(as_json, "not_found", f"no budget {budget_id!r} in the unit")
    if as_json:
        echo_json({"removed": budget_id})
    else:
        click.echo(f"removed {budget_id}")


@budgets_group.command("time-zone")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.argument("zone_name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def time_zone_command(unit_ref: str, zone_name: str, as_json: bool) -> None:
    """Set the unit's IANA time zone (the calendar of its budget periods)."""
    from idp import audit
    from idp.purchases import budgets
    from idp.rights import SYSTEM

    try:
        unit = budgets.set_time_zone(SYSTEM, unit_ref, zone_name, who=audit.as_actor(actor()))
    except budgets.BudgetError as exc:
        fail(as_json, exc.code, exc.detail)
    if as_json:
        echo_json({"unit_id": unit.id, "time_zone": unit.time_zone})
    else:
        click.echo(f"{unit.slug}: {unit.time_zone}")
