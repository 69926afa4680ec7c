"""``idp payment-methods set|list|remove``: the payment methods a unit allows its
people at merchants (issue 17): invoice (with the address), purchase_order,
company_card (a programme reference or token, never a card number), cost_centre;
each optionally only for some roles or groups and a budget range."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from idp.cli.units import actor, echo_json, fail

KINDS = ["invoice", "purchase_order", "company_card", "cost_centre"]


@click.group("payment-methods")
def payment_methods_group() -> None:
    """Payment methods a unit allows at merchants."""


@payment_methods_group.command("set")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.option("--kind", type=click.Choice(KINDS), required=True)
@click.option("--company-name", help="invoice: the addressee.")
@click.option("--street", help="invoice: street and number.")
@click.option("--postal-code", help="invoice: postal code.")
@click.option("--city", help="invoice: city.")
@click.option("--country", help="invoice: ISO 3166-1 alpha-2 country code.")
@click.option("--reference", help="company_card: the programme's reference or token.")
@click.option("--role", "roles", multiple=True, help="Only holders of this role or group.")
@click.option("--min-budget", help="Only people whose budget is at least this.")
@click.option("--max-budget", help="Only people whose budget is at most this.")
@click.option("--currency", help="Currency of --min-budget/--max-budget.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def set_command(
    unit_ref: str, kind: str, company_name: str | None, street: str | None,
    postal_code: str | None, city: str | None, country: str | None, reference: str | None,
    roles: tuple[str, ...], min_budget: str | None, max_budget: str | None,
    currency: str | None, as_json: bool,
) -> None:
    """Allow a payment method in the unit (replaces the unit's method of that kind)."""
    from idp import audit
    from idp.purchases import payment_methods
    from idp.purchases.budgets import BudgetError
    from idp.rights import SYSTEM

    address = {k: v for k, v in (("name", company_name), ("street", street),
                                 ("postal_code", postal_code), ("city", city),
                                 ("country", country)) if v}
    data = payment_methods.MethodInput(kind, address, reference, list(roles), min_budget,
                                       max_budget, currency)
    try:
        row = payment_methods.set_method(SYSTEM, unit_ref, data, who=audit.as_actor(actor()))
    except BudgetError as exc:
        fail(as_json, exc.code, exc.detail)
    shown = payment_methods.describe(row, currency)
    if as_json:
        echo_json(shown)
    else:
        click.echo(f"{row.kind} allowed in {row.unit_id}")


@payment_methods_group.command("list")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_command(unit_ref: str, as_json: bool) -> None:
    """List the unit's own payment methods (budget bounds in minor units)."""
    from idp.purchases import payment_methods
    from idp.purchases.budgets import BudgetError
    from idp.rights import SYSTEM

    try:
        rows = [payment_methods.describe(r) for r in payment_methods.list_methods(SYSTEM, unit_ref)]
    except BudgetError as exc:
        fail(as_json, exc.code, exc.detail)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        roles = f" (roles: {', '.join(row['roles'])})" if row["roles"] else ""
        click.echo(f"{row['kind']}{roles}")


@payment_methods_group.command("remove")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.option("--kind", type=click.Choice(KINDS), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def remove_command(unit_ref: str, kind: str, as_json: bool) -> None:
    """Stop allowing a payment method in the unit."""
    from idp import audit
    from idp.purchases import payment_methods
    from idp.purchases.budgets import BudgetError
    from idp.rights import SYSTEM

    try:
        removed = payment_methods.remove_method(SYSTEM, unit_ref, kind,
                                                who=audit.as_actor(actor()))
    except BudgetError as exc:
        fail(as_json, exc.code, exc.detail)
    if not removed:
        fail(as_json, "not_found", f"the unit has no {kind} method")
    if as_json:
        echo_json({"removed": kind})
    else:
        click.echo(f"removed {kind}")
