"""``idp migrate``: bring the database schema to this release's newest revision, and
nothing else (no key file, no signing keys): the command of a migration job or init
container, run once before a release's nodes start."""

from __future__ import annotations

import json

import click

from idp.settings import Settings
from idp.store import migrate


@click.command("migrate")
@click.option("--check", is_flag=True, help="Change nothing; exit 1 when the schema is behind.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as one JSON object.")
def migrate_command(check: bool, as_json: bool) -> None:
    """Migrate the database (IDP_DATABASE_URL) to the newest schema. Idempotent;
    needs no master key. Migrations are additive, so nodes of the previous release
    keep running while it runs."""
    url = Settings().database_url
    before = migrate.current_revision(url)
    head = migrate.head_revision(url)
    if check:
        current = migrate.schema_is_current(before)
        result = {"schema_revision": before, "head": head, "current": current}
        click.echo(json.dumps(result) if as_json else
                   f"database schema at {before}, this release's head is {head}")
        if not current:
            raise SystemExit(1)
        return
    migrate.upgrade(url)
    after = migrate.current_revision(url)
    if as_json:
        click.echo(json.dumps({"schema_revision_before": before, "schema_revision": after,
                               "migrated": before != after}))
        return
    click.echo(f"database schema at revision {after}" + (" (migrated)" if before != after else ""))
