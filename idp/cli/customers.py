"""``idp customers create|list|show|update|delete``: the operator's customers.

The rules live in :mod:`idp.units.customers`; this module parses and reports. With
``--json`` each command prints one JSON document (``list``: an array); a refused
change prints ``{"error": code, "error_description": ...}`` and exits 1.
"""

from __future__ import annotations

from typing import Any

import click
from flask.cli import with_appcontext

from idp.cli.units import actor, echo_json, fail

_ADDRESS = ("street", "postal_code", "city", "country")


def _address_options(f: Any) -> Any:
    for name in reversed(_ADDRESS):
        f = click.option(f"--{name.replace('_', '-')}", name, default=None,
                         help=f"Company address: {name.replace('_', ' ')}.")(f)
    return f


def _data(values: dict[str, Any]) -> dict[str, Any]:
    """The service's ``data`` from the options given (None: not given)."""
    data = {k: v for k, v in values.items() if v is not None and k not in _ADDRESS}
    address = {k: values[k] for k in _ADDRESS if values.get(k) is not None}
    if address:
        data["address"] = address
    return data


def _find(ref: str, as_json: bool) -> Any:
    from idp.units import customers

    unit = customers.find(ref)
    if unit is None:
        fail(as_json, "not_found", f"no customer {ref!r}")
    return unit


def _print(data: dict[str, Any]) -> None:
    click.echo(f"{data['id']}  {data['slug']}  {data['name']} ({data['kind']})")
    click.echo(f"    status: {data['status']}  activity: {data['activity']}")
    if data["kind"] == "company":
        address = ", ".join(v for v in (data["address"] or {}).values())
        click.echo(f"    address: {address or '-'}  vat_id: {data['vat_id'] or '-'}")


@click.group("customers")
def customers_group() -> None:
    """Customers: top-level units of kind company or person."""


@customers_group.command("create")
@click.option("--kind", type=click.Choice(["company", "person"]), required=True)
@click.option("--name", default=None, help="A company's name.")
@click.option("--given-name", "given_name", default=None, help="A person's given name.")
@click.option("--family-name", "family_name", default=None, help="A person's family name.")
@click.option("--vat-id", "vat_id", default=None, help="A company's VAT id.")
@_address_options
@click.option("--slug", default=None, help="Stable key; derived from the name if omitted.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def create_command(kind: str, as_json: bool, **values: Any) -> None:
    """Create a customer and print its id (the whole customer with --json)."""
    from idp.units import customers

    try:
        unit = customers.create(kind, _data(values), actor())
    except customers.CustomerError as exc:
        fail(as_json, exc.code, str(exc))
    if as_json:
        echo_json(customers.describe(unit, None))
    else:
        click.echo(unit.id)


@customers_group.command("list")
@click.option("--kind", type=click.Choice(["company", "person"]), default=None)
@click.option("--status", type=click.Choice(["active", "blocked"]), default=None)
@click.option("--activity", type=click.Choice(["active", "dormant", "never"]), default=None)
@click.option("--search", "q", default=None, help="Part of the name, slug or VAT id.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_command(
    kind: str | None, status: str | None, activity: str | None, q: str | None, as_json: bool
) -> None:
    """List the customers by name, with status and activity."""
    from idp.units import customers

    filters = customers.Filters(kind=kind, status=status, activity=activity,
                                active_since=customers.active_since(), q=q or None)
    rows: list[dict[str, Any]] = []
    after = None
    while True:
        found = customers.search(filters, after, 200)
        rows += [customers.describe(unit, last) for unit, last in found]
        if len(found) < 200:
            break
        after = (found[-1][0].name, found[-1][0].id)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['id']}  {row['slug']:<24} {row['kind']:<8} {row['status']:<8} "
                   f"{row['activity']:<8} {row['name']}")


@customers_group.command("show")
@click.argument("customer_ref")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def show_command(customer_ref: str, as_json: bool) -> None:
    """Show CUSTOMER_REF (id or slug): data, status and activity."""
    from idp.units import customers

    unit = _find(customer_ref, as_json)
    data = customers.describe(unit, customers.last_signin(unit))
    if as_json:
        echo_json(data)
    else:
        _print(data)


@customers_group.command("update")
@click.argument("customer_ref")
@click.option("--name", default=None)
@click.option("--given-name", "given_name", default=None)
@click.option("--family-name", "family_name", default=None)
@click.option("--vat-id", "vat_id", default=None, help="'' clears it.")
@_address_options
@click.option("--slug", default=None)
@click.option("--status", type=click.Choice(["active", "blocked"]), default=None,
              help="blocked: none of the customer's accesses gives anything.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def update_command(customer_ref: str, as_json: bool, **values: Any) -> None:
    """Change a customer's data or status (only the options given)."""
    from idp.units import customers

    unit = _find(customer_ref, as_json)
    data = _data(values)
    if "address" in data:  # the given fields change, the others are kept
        data["address"] = {**(unit.address or {}), **data["address"]}
    try:
        unit = customers.update(unit.id, data, actor())
    except customers.CustomerError as exc:
        fail(as_json, exc.code, str(exc))
    result = customers.describe(unit, customers.last_signin(unit))
    if as_json:
        echo_json(result)
    else:
        _print(result)


@customers_group.command("delete")
@click.argument("customer_ref")
@click.option("--confirm", "confirm", required=True, metavar="NAME",
              help="The customer's exact name.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def delete_command(customer_ref: str, confirm: str, as_json: bool) -> None:
    """Delete a customer permanently with its sub-units, accesses, grants, sign-in
    records and configuration (the people's accounts stay)."""
    from dataclasses import asdict

    from idp.units import customers

    unit = _find(customer_ref, as_json)
    try:
        done = customers.delete(unit.id, confirm, actor())
    except customers.CustomerError as exc:
        fail(as_json, exc.code, str(exc))
    removed = {**asdict(done.removed), "admin_clients": len(done.admin_clients)}
    if as_json:
        echo_json({"id": done.id, "deleted": True, "removed": removed})
    else:
        click.echo(f"deleted {done.id}: " + ", ".join(f"{k} {v}" for k, v in removed.items()))
