"""``idp accesses list|add|update|suspend|reactivate|remove|bulk|reset-password``: the accesses API
(docs/admin-api.md, "Accesses" and "Lists and bulk actions") for operators and
scripts. The operator acts as the system (every unit); the audit log names the
command's user (``cli:<user>``). ``--json`` prints what the API answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NoReturn

import click
from flask.cli import with_appcontext

from idp.cli.units import actor, echo_json, fail

ACTIONS = ("suspend", "reactivate", "remove", "resend", "reset_password")


@click.group("accesses")
def accesses_group() -> None:
    """People's accesses to units: list, link, change, suspend, remove, bulk."""


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}


def _show(data: dict[str, Any]) -> None:
    roles = ", ".join([*data["roles"], *data["permission_groups"]]) or "-"
    access = "" if data["platform_access"] else "  (no platform access)"
    click.echo(f"{data['id']}  {data['email']}  {data['unit_name']}  {data['status']}  "
               f"[{roles}]{access}")


def _refused(as_json: bool, exc: Exception) -> NoReturn:
    fail(as_json, getattr(exc, "code", "refused"), str(exc))


def _unit(ref: str, as_json: bool) -> str:
    from idp.units import registry as units

    found = units.find(ref)
    if found is None:
        fail(as_json, "not_found", f"no business unit {ref!r}")
    return found.id


def _access(unit_ref: str, access_id: str, as_json: bool) -> Any:
    from idp.accounts import access_admin

    try:
        return access_admin.get(_unit(unit_ref, as_json), access_id)
    except access_admin.Refused as exc:
        _refused(as_json, exc)


def _filter_options(fn: Any) -> Any:
    options = [
        click.option("--status", type=click.Choice(["invited", "active", "suspended"])),
        click.option("--role", help="A built-in role."),
        click.option("--group", "group", help="A permission group."),
        click.option("--domain", help="E-mail addresses ending in @DOMAIN."),
        click.option("--q", "q", help="A prefix of the address, given or family name."),
        click.option("--signed-in-before", type=click.DateTime(), help="Last sign-in before."),
        click.option("--signed-in-after", type=click.DateTime(), help="Last sign-in at or after."),
        click.option("--never-signed-in", is_flag=True),
        click.option("--unit", "unit_ref", help="Only this unit (id or slug)."),
        click.option("--sub-units", is_flag=True, help="With --unit: its sub-units too."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _filter(opts: dict[str, Any], as_json: bool) -> Any:
    from idp.accounts import access_admin
    from idp.rights import SYSTEM
    from idp.store.access_lists_repo import Filter

    unit_id = _unit(opts["unit_ref"], as_json) if opts.get("unit_ref") else None
    bounds = access_admin.scope(SYSTEM, "users.read", unit_id, bool(opts.get("sub_units")))
    return Filter(
        unit_ids=bounds.unit_ids, status=opts.get("status"), role=opts.get("role"),
        group=opts.get("group"), domain=opts.get("domain"), q=opts.get("q"),
        signed_in_before=opts.get("signed_in_before"),
        signed_in_after=opts.get("signed_in_after"),
        never_signed_in=bool(opts.get("never_signed_in")),
    )


@accesses_group.command("list")
@_filter_options
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--cursor", help="The next_cursor of the previous page.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON page.")
@with_appcontext
def list_command(limit: int, cursor: str | None, as_json: bool, **opts: Any) -> None:
    """List accesses (every unit, or --unit), filtered, one page ordered by address."""
    from idp.accounts import access_admin
    from idp.api import pages
    from idp.api.problems import Problem

    f = _filter(opts, as_json)
    try:
        key = pages.decode(cursor, (str, str))
    except Problem as exc:
        fail(as_json, exc.code, exc.detail)
    after = (key[0], key[1]) if key else None
    rows, more = access_admin.page(f, after, limit)
    items = [_plain(access_admin.describe(r)) for r in rows]
    next_cursor = pages.encode([rows[-1].email, rows[-1].id]) if more and rows else None
    if as_json:
        echo_json({"items": items, "next_cursor": next_cursor, "total": access_admin.count(f)})
        return
    for item in items:
        _show(item)
    if next_cursor:
        click.echo(f"more: --cursor {next_cursor}")


@accesses_group.command("add")
@click.argument("unit_ref")
@click.option("--email", help="The person's address (an existing account).")
@click.option("--account-id", help="The person's account id.")
@click.option("--roles", help="Built-in roles, comma-separated.")
@click.option("--groups", help="Permission groups, comma-separated.")
@click.option("--platform-access/--no-platform-access", default=True, show_default=True)
@click.option("--notify", help="Notification events, comma-separated (default: the roles').")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def add_command(unit_ref: str, email: str | None, account_id: str | None, roles: str | None,
                groups: str | None, platform_access: bool, notify: str | None,
                as_json: bool) -> None:
    """Link an existing person to UNIT (no second account)."""
    from idp import audit
    from idp.accounts import access_admin
    from idp.rights import SYSTEM

    if (email is None) == (account_id is None):
        fail(as_json, "invalid_request", "give exactly one of --email and --account-id")
    unit_id = _unit(unit_ref, as_json)
    try:
        row = access_admin.link(
            SYSTEM, unit_id, email=email, account_id=account_id, roles=_names(roles) or [],
            groups=_names(groups) or [], platform_access=platform_access,
            events=_names(notify), who=audit.as_actor(actor()),
        )
    except access_admin.Refused as exc:
        _refused(as_json, exc)
    data = _plain(access_admin.describe(access_admin.get(unit_id, row.id)))
    echo_json(data) if as_json else _show(data)


@accesses_group.command("update")
@click.argument("unit_ref")
@click.argument("access_id")
@click.option("--roles", help="Built-in roles, comma-separated (replaces; '' for none).")
@click.option("--groups", help="Permission groups, comma-separated (replaces; '' for none).")
@click.option("--platform-access/--no-platform-access", default=None)
@click.option("--notify", help="Notification events, comma-separated (replaces).")
@click.option("--default-notifications", is_flag=True, help="Back to the roles' defaults.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def update_command(unit_ref: str, access_id: str, roles: str | None, groups: str | None,
                   platform_access: bool | None, notify: str | None,
                   default_notifications: bool, as_json: bool) -> None:
    """Change an access's roles, permission groups, platform access, notifications."""
    from idp import audit
    from idp.accounts import access_admin
    from idp.rights import SYSTEM

    row = _access(unit_ref, access_id, as_json)
    try:
        access_admin.update(
            SYSTEM, row, roles=_names(roles), groups=_names(groups),
            platform_access=platform_access, events=_names(notify),
            reset_events=default_notifications, who=audit.as_actor(actor()),
        )
    except access_admin.Refused as exc:
        _refused(as_json, exc)
    data = _plain(access_admin.describe(access_admin.get(row.unit_id, access_id)))
    echo_json(data) if as_json else _show(data)


def _single(action: str, unit_ref: str, access_id: str, as_json: bool) -> None:
    from idp import audit
    from idp.accounts import access_admin
    from idp.rights import SYSTEM

    row = _access(unit_ref, access_id, as_json)
    unit_id = row.unit_id
    outcome = access_admin.act(SYSTEM, action, row, who=audit.as_actor(actor()))
    if outcome.outcome == "refused":
        fail(as_json, outcome.code or "refused",
             "the customer's last main user must stay" if outcome.code == "last_main_user"
             else "the unit does not allow passwords, or the access is not active"
             if outcome.code == "passwords_not_allowed" else "refused")
    if action == "remove":
        data: dict[str, Any] = {"id": access_id, "removed": outcome.outcome == "done"}
        echo_json(data) if as_json else click.echo(f"removed {access_id}")
        return
    data = _plain(access_admin.describe(access_admin.get(unit_id, access_id)))
    data["outcome"] = outcome.outcome
    echo_json(data) if as_json else _show(data)


@accesses_group.command("suspend")
@click.argument("unit_ref")
@click.argument("access_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def suspend_command(unit_ref: str, access_id: str, as_json: bool) -> None:
    """Suspend an access (roles kept, the unit's tokens revoked)."""
    _single("suspend", unit_ref, access_id, as_json)


@accesses_group.command("reactivate")
@click.argument("unit_ref")
@click.argument("access_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def reactivate_command(unit_ref: str, access_id: str, as_json: bool) -> None:
    """Reactivate a suspended access."""
    _single("reactivate", unit_ref, access_id, as_json)


@accesses_group.command("remove")
@click.argument("unit_ref")
@click.argument("access_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def remove_command(unit_ref: str, access_id: str, as_json: bool) -> None:
    """Remove an access (the person's account stays)."""
    _single("remove", unit_ref, access_id, as_json)


@accesses_group.command("reset-password")
@click.argument("unit_ref")
@click.argument("access_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def reset_password_command(unit_ref: str, access_id: str, as_json: bool) -> None:
    """E-mail the person a new generated password (status reset_by_staff); the old
    one stops working. Only in a unit that allows passwords. The password is never
    printed."""
    _single("reset_password", unit_ref, access_id, as_json)


@accesses_group.command("bulk")
@click.argument("action", type=click.Choice(ACTIONS))
@click.option("--ids", help="Access ids, comma-separated (else: every match of the filter).")
@_filter_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def bulk_command(action: str, ids: str | None, as_json: bool, **opts: Any) -> None:
    """Suspend, reactivate, remove or resend for the given ids or every filter match."""
    from idp import audit
    from idp.accounts import access_admin
    from idp.rights import SYSTEM
    from idp.store.access_lists_repo import Filter

    f = _filter(opts, as_json)
    chosen = _names(ids)
    if chosen is not None and not chosen:
        fail(as_json, "invalid_request", "--ids names no access")
    result = access_admin.bulk(SYSTEM, action, Filter(unit_ids=f.unit_ids), chosen,
                               None if chosen is not None else f, who=audit.as_actor(actor()))
    data = {"counts": result.counts, "items": result.items, "omitted": result.omitted}
    if as_json:
        echo_json(data)
        return
    click.echo(", ".join(f"{k}: {v}" for k, v in result.counts.items()))
    for item in result.items:
        click.echo(f"{item['id']}  {item['outcome']}  {item['code'] or ''}")


@accesses_group.command("export")
@_filter_options
@click.option("--columns", help="Column names, comma-separated (default: the default set).")
@click.option("--include-inactive", is_flag=True, help="Suspended accesses too.")
@click.option("--only-details-sent", is_flag=True,
              help="Only accesses whose invitation or welcome mail was sent.")
@click.option("--password-status", is_flag=True, help="Add the password status column.")
@click.option("--dialect", type=click.Choice(["excel", "excel-de"]), default="excel",
              show_default=True, help="excel: commas; excel-de: semicolons.")
@with_appcontext
def export_command(columns: str | None, include_inactive: bool, only_details_sent: bool,
                   password_status: bool, dialect: str, **opts: Any) -> None:
    """Write a unit's accesses as CSV to stdout (--unit required), with the list's
    filters; UTF-8 with a byte order mark, formulas defused."""
    from idp import audit
    from idp.accounts import access_csv
    from idp.rights import SYSTEM

    if not opts.get("unit_ref"):
        fail(False, "invalid_request", "--unit is required")
    f = _filter(opts, False)
    try:
        chosen = access_csv.columns(columns.split(",") if columns is not None else None,
                                    password_status)
    except access_csv.CsvRefused as exc:
        _refused(False, exc)
    unit_id = _unit(opts["unit_ref"], False)
    filters = {k: _plain({k: v})[k] for k, v in opts.items() if v not in (None, False)}
    import sys

    out = sys.stdout.buffer
    for chunk in access_csv.export(
        SYSTEM, unit_id, access_csv.export_filter(f, include_inactive, only_details_sent),
        chosen, dialect, who=audit.as_actor(actor()), filters=filters,
    ):
        out.write(chunk)
    out.flush()


@accesses_group.command("import")
@click.option("--unit", "unit_ref", required=True, help="The unit (id or slug).")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--dry-run", is_flag=True, help="Check every row, write nothing.")
@click.option("--no-invite", is_flag=True,
              help="Create new people without sending their invitation yet.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per row (JSON Lines), then the summary.")
@with_appcontext
def import_command(unit_ref: str, path: str, dry_run: bool, no_invite: bool,
                   as_json: bool) -> None:
    """Add people to a unit from a CSV file (the export's columns); idempotent by
    e-mail address. A progress bar on a terminal."""
    import os
    import sys

    from idp import audit
    from idp.accounts import access_csv
    from idp.rights import SYSTEM

    unit_id = _unit(unit_ref, as_json)
    source = click.open_file(path, "rb")
    size = os.path.getsize(path) if path != "-" else 0
    show_bar = sys.stderr.isatty() and size > 0 and not as_json

    def on_row(result: access_csv.RowResult) -> None:
        if as_json:
            echo_json(result.as_dict())
        elif result.outcome == "error" or result.code is not None:
            click.echo(f"row {result.row}  {result.email}  {result.outcome}  "
                       f"{result.column or ''}  {result.code or ''}  {result.message or ''}")

    bar: Any = click.progressbar(length=max(size, 1), label="importing", file=sys.stderr,
                                 hidden=not show_bar)
    with source, bar:
        try:
            report = access_csv.run_import(
                SYSTEM, unit_id, source, dry_run=dry_run, invite=not no_invite,
                who=audit.as_actor(actor()), progress=bar.update, on_row=on_row,
            )
        except access_csv.CsvRefused as exc:
            _refused(as_json, exc)
    summary = report.as_dict()
    summary.pop("items")
    if as_json:
        echo_json(summary)
        return
    click.echo(("dry run: " if dry_run else "") + ", ".join(
        f"{k}: {v}" for k, v in report.counts.items()) + f" ({report.rows} rows)")
    if report.counts.get("error"):
        raise SystemExit(1)
