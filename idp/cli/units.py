"""``idp units create|list|show|update|delete`` and ``idp units fields add|list|remove``.

The rules live in :mod:`idp.units.registry`; this module parses and reports. With ``--json``
each command prints one JSON document (``create`` prints the unit with its ``id``);
a refused change prints ``{"error": code, "error_description": ...}`` and exits 1.
"""

from __future__ import annotations

import getpass
import json
from typing import Any, NoReturn

import click
from flask.cli import with_appcontext


def actor() -> str:
    """``cli:<os user>``: who ran the command, for the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, sort_keys=True))


def fail(as_json: bool, code: str, message: str) -> NoReturn:
    """Report a refused command (JSON on stdout with ``--json``) and exit 1."""
    if as_json:
        echo_json({"error": code, "error_description": message})
        raise SystemExit(1)
    raise click.ClickException(message)


def _show(data: dict[str, Any]) -> None:
    parent = f" under {data['parent']}" if data["parent"] else ""
    click.echo(f"{data['id']}  {data['slug']}  {data['name']} ({data['type']}){parent}")
    click.echo(f"    roles: {', '.join(data['roles'])}")
    for f in data["profile_fields"]:
        req = " (required)" if f["required"] else ""
        click.echo(f"    field {f['name']}: {f['label']}{req}")
    click.echo(f"    members: {data['members']}")


@click.group("units")
def units_group() -> None:
    """Business units: companies, sub-units, roles and extra profile fields."""


@units_group.command("create")
@click.option("--name", required=True, help="Display name.")
@click.option("--parent", default=None, help="Parent unit id or slug (for a sub-unit).")
@click.option(
    "--type", "kind", type=click.Choice(["company", "person"]), default="company",
    show_default=True,
)
@click.option("--slug", default=None, help="Stable key; derived from the name if omitted.")
@click.option("--group", "groups", multiple=True, help="Permission group (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def create_command(
    name: str, parent: str | None, kind: str, slug: str | None, groups: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create a business unit and print its id."""
    from idp.units import registry as units

    try:
        unit = units.create(name, parent, kind, slug, groups, actor=actor())
    except units.UnitError as exc:
        fail(as_json, exc.code, str(exc))
    if as_json:
        echo_json(units.describe(unit))
    else:
        click.echo(unit.id)


@units_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_command(as_json: bool) -> None:
    """List every unit."""
    from idp.units import registry as units

    rows = [units.describe(u) for u in units.list_units()]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        parent = f"  parent={row['parent']}" if row["parent"] else ""
        click.echo(f"{row['id']}  {row['slug']:<24} {row['type']:<8} {row['name']}{parent}")


@units_group.command("show")
@click.argument("unit_ref")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def show_command(unit_ref: str, as_json: bool) -> None:
    """Show UNIT_REF (id or slug) with its roles and profile fields."""
    from idp.units import registry as units

    try:
        data = units.describe(units.get(unit_ref))
    except units.UnitError as exc:
        fail(as_json, exc.code, str(exc))
    if as_json:
        echo_json(data)
    else:
        _show(data)


@units_group.command("update")
@click.argument("unit_ref")
@click.option("--name", default=None)
@click.option("--parent", default=None, help="New parent id or slug; '' for top level.")
@click.option("--type", "kind", type=click.Choice(["company", "person"]), default=None)
@click.option("--group", "groups", multiple=True, help="Replace the permission groups.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def update_command(
    unit_ref: str, name: str | None, parent: str | None, kind: str | None,
    groups: tuple[str, ...], as_json: bool,
) -> None:
    """Rename, move or retype a unit, or replace its permission groups."""
    from idp.units import registry as units

    kwargs: dict[str, Any] = {"name": name, "kind": kind, "actor": actor()}
    if parent is not None:
        kwargs["parent"] = parent or None
    if groups:
        kwargs["permission_groups"] = list(groups)
    try:
        unit = units.update(unit_ref, **kwargs)
    except units.UnitError as exc:
        fail(as_json, exc.code, str(exc))
    data = units.describe(unit)
    if as_json:
        echo_json(data)
    else:
        _show(data)


@units_group.command("delete")
@click.argument("unit_ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def delete_command(unit_ref: str, yes: bool, as_json: bool) -> None:
    """Delete a unit with its memberships, fields, domains and connectors."""
    from idp.units import registry as units

    try:
        unit = units.get(unit_ref)
    except units.UnitError as exc:
        fail(as_json, exc.code, str(exc))
    if not yes and not as_json:
        click.confirm(f"Delete unit {unit.slug} and all its memberships?", abort=True)
    try:
        units.delete(unit.id, actor=actor())
    except units.UnitError as exc:
        fail(as_json, exc.code, str(exc))
    if as_json:
        echo_json({"id": unit.id, "slug": unit.slug, "deleted": True})
    else:
        click.echo(f"deleted {unit.slug}")


@units_group.command("policy")
@click.argument("unit_ref")
@click.option(
    "--require-totp/--no-require-totp", "require_totp", default=None,
    help="Members signing in by e-mail code or password must also give a TOTP code.",
)
@click.option(
    "--fresh-code-every-sign-in/--no-fresh-code-every-sign-in", "fresh_code", default=None,
    help="Every authorisation request for members asks for a new code (or a new "
         "upstream SSO sign-in), whatever session exists.",
)
@click.option(
    "--passwords-allowed/--no-passwords-allowed", "passwords_allowed", default=None,
    help="Members holding an active access may also sign in with a password (e-mail "
         "codes stay available); invitations and access details then carry a "
         "generated initial password.",
)
@click.option(
    "--notify-impersonation/--no-notify-impersonation", "notify_impersonation",
    default=None,
    help="E-mail members when someone acts as them (impersonation; default on).",
)
@click.option(
    "--passkey-counts-as-fresh/--no-passkey-counts-as-fresh", "passkey_fresh", default=None,
    help="With --fresh-code-every-sign-in: a passkey sign-in with user verification "
         "counts as the new code (default off: members must use an e-mail code).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def policy_command(unit_ref: str, require_totp: bool | None, fresh_code: bool | None,
                   passwords_allowed: bool | None, notify_impersonation: bool | None,
                   passkey_fresh: bool | None, as_json: bool) -> None:
    """Show or change UNIT_REF's sign-in policy (TOTP second factor, a fresh code at
    every sign-in, passwords allowed, e-mail on impersonation; audited)."""
    from idp.factors import fresh_code as fresh
    from idp.factors import passwords, totp
    from idp.units import registry as units

    try:
        if require_totp is not None:
            totp.set_unit_policy(unit_ref, require_totp, actor())
        if fresh_code is not None:
            fresh.set_unit_policy(unit_ref, fresh_code, actor())
        if passwords_allowed is not None:
            passwords.set_unit_policy(unit_ref, passwords_allowed, actor())
        if notify_impersonation is not None:
            from idp.interaction import impersonation

            impersonation.set_notify_policy(unit_ref, notify_impersonation, actor())
        if passkey_fresh is not None:
            from idp.factors import passkeys

            passkeys.set_unit_policy(unit_ref, passkey_fresh, actor())
        unit = units.get(unit_ref)
        data = {"unit": unit.slug, "require_totp": bool(unit.require_totp),
                "fresh_code_every_sign_in": bool(unit.fresh_code_every_sign_in),
                "passwords_allowed": bool(unit.passwords_allowed),
                "notify_impersonation": bool(unit.notify_impersonation),
                "passkey_counts_as_fresh": bool(unit.passkey_counts_as_fresh)}
    except units.UnitError as exc:
        fail(as_json, exc.code, str(exc))
    if as_json:
        echo_json(data)
    else:
        click.echo(f"{data['unit']}  require_totp={'yes' if data['require_totp'] else 'no'}"
                   f"  fresh_code_every_sign_in="
                   f"{'yes' if data['fresh_code_every_sign_in'] else 'no'}"
                   f"  passwords_allowed={'yes' if data['passwords_allowed'] else 'no'}"
                   f"  notify_impersonation={'yes' if data['notify_impersonation'] else 'no'}"
                   f"  passkey_counts_as_fresh="
                   f"{'yes' if data['passkey_counts_as_fresh'] else 'no'}")


@units_group.group("fields")
def fields_group() -> None:
    """Extra profile fields a unit defines for its employees' wallets."""


@fields_group.command("add")
@click.argument("unit_ref")
@click.option("--name", required=True, help="Field key, e.g. ship_to.")
@click.option("--label", default=None, help="Label shown to employees.")
@click.option("--required", is_flag=True, help="Employees must fill it in.")
@click.option("--position", type=int, default=None, help="Display order.")
@click.option("--type", "type_", default=None,
              help="text, number, money, date, choice, email or phone (default text).")
@click.option("--currency", default=None, help="ISO 4217 code of a money field, e.g. EUR.")
@click.option("--choice", "choices", multiple=True, help="One choice of a choice field (repeat).")
@click.option("--label-de", default=None, help="The label in German.")
@click.option("--help-en", default=None, help="Help text in English.")
@click.option("--help-de", default=None, help="Help text in German.")
@click.option("--set-by", type=click.Choice(["employee", "company"]), default=None,
              help="company: only the company's HR system or directory sets it.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def fields_add(
    unit_ref: str, name: str, label: str | None, required: bool, position: int | None,
    type_: str | None, currency: str | None, choices: tuple[str, ...], label_de: str | None,
    help_en: str | None, help_de: str | None, set_by: str | None, as_json: bool,
) -> None:
    """Add (or change) a profile field of UNIT_REF."""
    from idp.units import registry as units

    labels = {"de": label_de} if label_de else None
    helps = {k: v for k, v in (("en", help_en), ("de", help_de)) if v} or None
    try:
        row = units.add_field(
            unit_ref, name, label, required, position, actor=actor(), type_=type_,
            currency=currency, choices=list(choices) or None, labels=labels, help_=helps,
            set_by=set_by,
        )
    except units.UnitError as exc:
        fail(as_json, exc.code, str(exc))
    data = {"id": row.id, "unit_id": row.unit_id, **units.field_to_dict(row)}
    if as_json:
        echo_json(data)
    else:
        click.echo(f"{row.name}: {row.label} ({row.type})")


@fields_group.command("list")
@click.argument("unit_ref")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def fields_list(unit_ref: str, as_json: bool) -> None:
    """List the profile fields of UNIT_REF."""
    from idp.units import registry as units

    try:
        rows = [units.field_to_dict(f) for f in units.fields(unit_ref)]
    except units.UnitError as exc:
        fail(as_json, exc.code, str(exc))
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        kind = row["type"] + (f" {row['currency']}" if row.get("currency") else "")
        set_by = ", set by the company" if row.get("set_by") == "company" else ""
        click.echo(f"{row['name']}: {row['label']} ({kind}{set_by})"
                   f"{' (required)' if row['required'] else ''}")


@fields_group.command("remove")
@click.argument("unit_ref")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def fields_remove(unit_ref: str, name: str, as_json: bool) -> None:
    """Remove the profile field NAME of UNIT_REF."""
    from idp.units import registry as units

    try:
        removed = units.remove_field(unit_ref, name, actor=actor())
    except units.UnitError as exc:
        fail(as_json, exc.code, str(exc))
    if not removed:
        fail(as_json, "not_found", f"no field {name!r}")
    if as_json:
        echo_json({"name": name, "removed": True})
    else:
        click.echo(f"removed {name}")
