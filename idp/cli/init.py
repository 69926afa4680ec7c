"""``idp init``: first-run set-up that works on a totally fresh checkout.

It is a plain click command rather than an app-context command: the application
factory needs the master key, so the development key file must exist *before* the
app is built. Running it again changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import ScriptInfo

from idp.config import bootstrap
from idp.crypto.primitives import MasterKeyError
from idp.settings import Settings
from idp.store import migrate


@click.command("init")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as one JSON object.")
@click.pass_context
def init_command(ctx: click.Context, as_json: bool) -> None:
    """Create the development master key file (when IDP_MASTER_KEY is unset), migrate
    the database to the newest schema and create missing signing keys. Idempotent."""
    settings = Settings()
    key_file_created = False
    if not settings.master_key:
        key_file_created = bootstrap.ensure_master_key_file(settings.master_key_file)
    try:
        app = ctx.ensure_object(ScriptInfo).load_app()
    except MasterKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    database_url = app.extensions["unitgate"].settings.database_url
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    before = migrate.current_revision(database_url)
    created = bootstrap.init(app)
    after = migrate.current_revision(database_url)
    result = {
        "master_key_file": None if settings.master_key else settings.master_key_file,
        "master_key_file_created": key_file_created,
        "schema_revision_before": before,
        "schema_revision": after,
        "migrated": before != after,
        "keys_created": created,
    }
    if as_json:
        click.echo(json.dumps(result))
        return
    if key_file_created:
        click.echo(f"created development master key file {settings.master_key_file}")
    click.echo(f"database schema at revision {after}" + (" (migrated)" if before != after else ""))
    click.echo(f"created signing keys: {', '.join(created)}" if created else "signing keys present")
