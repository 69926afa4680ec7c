"""``idp approvals policy set|show|clear``: a unit's approval policy (issue 17).

``set --unit U --step 'above=500.00,approvers=manager' --step
'above=5000.00,approvers=permission' [--currency EUR] [--expiry-hours 48]`` replaces
the unit's own policy (steps in ascending thresholds; approvers ``manager``,
``permission`` or ``group:<name>``); ``show`` prints the policy that applies (own or
inherited); ``clear`` removes the unit's own. The CLI acts as the operator (every
unit); each change is audited as ``cli:<user>``.
"""

from __future__ import annotations

from typing import Any

import click
from flask.cli import with_appcontext

from idp.cli.units import actor, echo_json, fail


@click.group("approvals")
def approvals_group() -> None:
    """Approvals of orders (issue 17)."""


@approvals_group.group("policy")
def policy_group() -> None:
    """A unit's approval policy: amount thresholds and who approves at each."""


def _print(shown: dict[str, Any]) -> None:
    where = f" (inherited from {shown['inherited_from']})" if shown["inherited_from"] else ""
    expiry = shown["expiry_hours"] or "default"
    click.echo(f"unit {shown['unit_id']}{where}: {shown['currency']}, expiry {expiry} hours")
    for i, step in enumerate(shown["steps"], start=1):
        click.echo(f"  step {i}: above {step['above']}: {step['approvers']}")


@policy_group.command("set")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.option("--step", "steps", multiple=True, required=True,
              help="'above=AMOUNT,approvers=manager|permission|group:NAME' (repeat, ascending).")
@click.option("--currency", help="ISO 4217 code (default: the unit's budget currency).")
@click.option("--expiry-hours", type=int, help="Hours an approval waits (default: setting).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def set_command(unit_ref: str, steps: tuple[str, ...], currency: str | None,
                expiry_hours: int | None, as_json: bool) -> None:
    """Set (replace) the unit's own approval policy."""
    from idp import audit
    from idp.purchases import approval_policy
    from idp.purchases.budgets import BudgetError
    from idp.rights import SYSTEM

    try:
        parsed = [approval_policy.parse_step(s) for s in steps]
        row = approval_policy.set_policy(SYSTEM, unit_ref, parsed, currency, expiry_hours,
                                         who=audit.as_actor(actor()))
    except BudgetError as exc:
        fail(as_json, exc.code, exc.detail)
    shown = approval_policy.describe(row, row.unit_id)
    if as_json:
        echo_json(shown)
        return
    _print(shown)


@policy_group.command("show")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def show_command(unit_ref: str, as_json: bool) -> None:
    """Show the policy that applies in the unit (its own or an ancestor's)."""
    from idp.purchases import approval_policy
    from idp.purchases.budgets import BudgetError, unit_for
    from idp.rights import SYSTEM

    try:
        unit = unit_for(unit_ref, SYSTEM)
        row = approval_policy.show_policy(SYSTEM, unit.id)
    except BudgetError as exc:
        fail(as_json, exc.code, exc.detail)
    if row is None:
        fail(as_json, "not_found", "no approval policy applies in this unit")
    shown = approval_policy.describe(row, unit.id)
    if as_json:
        echo_json(shown)
        return
    _print(shown)


@policy_group.command("clear")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def clear_command(unit_ref: str, as_json: bool) -> None:
    """Remove the unit's own policy (an ancestor's applies again)."""
    from idp import audit
    from idp.purchases import approval_policy
    from idp.purchases.budgets import BudgetError
    from idp.rights import SYSTEM

    try:
        removed = approval_policy.clear_policy(SYSTEM, unit_ref, who=audit.as_actor(actor()))
    except BudgetError as exc:
        fail(as_json, exc.code, exc.detail)
    if as_json:
        echo_json({"removed": removed})
    else:
        click.echo("removed" if removed else "the unit has no policy of its own")
