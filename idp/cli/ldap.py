"""``idp ldap add|list|show|delete|sync``: a unit's LDAP / Active Directory sync.

The rules live in :mod:`idp.ldap.directories` and :mod:`idp.ldap.sync`; this module
parses, reports and turns every expected failure (bad setting, unreachable server,
a sync already running) into a one-line error without a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext


def _read_secret_file(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from None
    return text.rstrip("\r\n")


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=None, sort_keys=True))


@click.group("ldap")
def ldap_group() -> None:
    """Sync employees from a unit's LDAP or Active Directory."""


@ldap_group.command("add")
@click.option("--unit", "unit_ref", required=True, help="Business unit id or slug.")
@click.option("--url", required=True, help="ldaps://host[:port] or ldap://host[:port].")
@click.option("--start-tls", is_flag=True, help="Upgrade ldap:// with StartTLS (RFC 4511).")
@click.option("--ca-file", type=click.Path(dir_okay=False), help="PEM CA to trust.")
@click.option("--bind-dn", required=True, help="DN of the read-only service account.")
@click.option(
    "--bind-password-file", required=True, type=click.Path(dir_okay=False),
    help="File holding the service account's password (one line).",
)
@click.option("--base-dn", required=True, help="Where the users are searched.")
@click.option("--filter", "user_filter", default=None, help="RFC 4515 user filter.")
@click.option(
    "--id-attribute", default="auto", show_default=True,
    help="Stable entry id: objectGUID, entryUUID, ... (auto: the first present).",
)
@click.option("--map", "maps", multiple=True, metavar="ATTR=FIELD",
              help="Fill FIELD from LDAP attribute ATTR (repeatable).")
@click.option("--unmap", multiple=True, metavar="FIELD", help="Do not sync FIELD.")
@click.option("--group-map", "group_maps", multiple=True, metavar="GROUP=ROLE",
              help="Members of GROUP (DN or CN) get unit role ROLE (repeatable).")
@click.option("--page-size", default=500, show_default=True, type=int)
@click.option("--schedule-minutes", default=0, show_default=True, type=int,
              help="Sync every N minutes in the server; 0: only by hand.")
@click.option("--trust-email", is_flag=True,
              help="Mark synced e-mail addresses as verified (see docs/ldap.md).")
@click.option("--login", "login_enabled", is_flag=True,
              help="Let members sign in with their directory password.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def add_command(
    unit_ref: str, url: str, start_tls: bool, ca_file: str | None, bind_dn: str,
    bind_password_file: str, base_dn: str, user_filter: str | None, id_attribute: str,
    maps: tuple[str, ...], unmap: tuple[str, ...], group_maps: tuple[str, ...],
    page_size: int, schedule_minutes: int, trust_email: bool, login_enabled: bool,
    as_json: bool,
) -> None:
    """Connect unit UNIT to an LDAP directory (one per unit)."""
    from idp.ldap import directories as dirs
    from idp.ldap.mapping import MappingError, build_attribute_map, build_group_map

    try:
        settings = dirs.DirectorySettings(
            url=url,
            bind_dn=bind_dn,
            bind_password=_read_secret_file(bind_password_file),
            base_dn=base_dn,
            user_filter=user_filter or dirs.DEFAULT_FILTER,
            start_tls=start_tls,
            ca_pem=_read_secret_file(ca_file) if ca_file else None,
            id_attribute=id_attribute,
            attribute_map=build_attribute_map(list(maps), list(unmap)),
            group_map=build_group_map(list(group_maps)),
            page_size=page_size,
            schedule_minutes=schedule_minutes,
            trust_email=trust_email,
            login_enabled=login_enabled,
        )
        row = dirs.create(unit_ref, settings)
    except (dirs.DirectoryConfigError, MappingError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        _echo_json(dirs.describe(row))
    else:
        click.echo(f"LDAP directory {row.id} added for unit {unit_ref}")


@ldap_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def list_command(as_json: bool) -> None:
    """List the configured directories and their last runs."""
    from idp.ldap import directories as dirs
    from idp.store import ldap_repo

    rows = [dirs.describe(r) for r in ldap_repo.directories()]
    if as_json:
        _echo_json({"directories": rows})
        return
    if not rows:
        click.echo("no LDAP directories")
    for r in rows:
        last = r["last_run_at"] or "never"
        failed = (r["last_run_summary"] or {}).get("failed")
        if failed:
            last = f"{last} FAILED: {failed}"
        click.echo(f"{r['id']}  unit={r['unit_id']}  {r['url']}  last sync: {last}")


def _directory(unit_ref: str) -> Any:
    from idp.ldap import directories as dirs

    try:
        return dirs.for_unit(unit_ref)
    except dirs.DirectoryConfigError as exc:
        raise click.ClickException(str(exc)) from None


@ldap_group.command("show")
@click.option("--unit", "unit_ref", required=True, help="Business unit id or slug.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def show_command(unit_ref: str, as_json: bool) -> None:
    """Show a unit's directory settings (never the password) and its last run."""
    from idp.ldap import directories as dirs

    data = dirs.describe(_directory(unit_ref))
    if as_json:
        _echo_json(data)
        return
    for key, value in data.items():
        shown = json.dumps(value) if isinstance(value, dict | list) else value
        click.echo(f"{key}: {shown}")


@ldap_group.command("delete")
@click.option("--unit", "unit_ref", required=True, help="Business unit id or slug.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def delete_command(unit_ref: str, as_json: bool) -> None:
    """Remove a unit's directory. Accounts stay; they are no longer synced."""
    from idp.ldap import directories as dirs

    row = _directory(unit_ref)
    directory_id = row.id
    dirs.delete(row)
    if as_json:
        _echo_json({"id": directory_id, "deleted": True})
    else:
        click.echo(f"LDAP directory {directory_id} deleted")


SUMMARY_KEYS = ("created", "updated", "deactivated", "reactivated", "unchanged", "skipped",
                "errors")


def _print_summary(summary: dict[str, Any]) -> None:
    label = "dry run, nothing changed" if summary["dry_run"] else "sync finished"
    click.echo(f"{label}: {summary['entries']} entries")
    for key in SUMMARY_KEYS:
        click.echo(f"  {key:<12}{summary[key]:>8}")
    for message in summary["error_samples"]:
        click.echo(f"  error: {message}", err=True)


@ldap_group.command("sync")
@click.option("--unit", "unit_ref", required=True, help="Business unit id or slug.")
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@click.option("--force", is_flag=True,
              help="Deactivate even when more than half of the accounts would go.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def sync_command(unit_ref: str, dry_run: bool, force: bool, as_json: bool) -> None:
    """Create, update and deactivate the unit's accounts from its directory.

    Prints a summary (created/updated/deactivated/reactivated/unchanged/skipped/
    errors); shows a progress bar on a terminal. Exits with status 1 and a one-line
    message when the directory cannot be read or another sync is running.
    """
    from idp.ldap import sync as ldap_sync

    row = _directory(unit_ref)
    try:
        if sys.stderr.isatty() and not as_json:
            try:
                total = ldap_sync.count_entries(row)
            except ldap_sync.SyncError:  # the run itself fails and records why
                total = 0
            with click.progressbar(length=total, label="syncing", file=sys.stderr) as bar:
                summary = ldap_sync.run_locked(row, dry_run, force, progress=bar.update)
        else:
            summary = ldap_sync.run_locked(row, dry_run, force)
    except ldap_sync.SyncError as exc:
        raise click.ClickException(str(exc)) from None
    data = summary.as_dict()
    if as_json:
        _echo_json(data)
    else:
        _print_summary(data)
