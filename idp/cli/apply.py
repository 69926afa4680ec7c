"""``idp apply FILE.yaml [--dry-run]`` and ``idp export``: declarative configuration.

The rules live in :mod:`idp.config.apply` and :mod:`idp.config.export`; the file
format in :mod:`idp.config.schema` and ``docs/companies.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from idp.cli.units import actor


@click.command("apply")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--dry-run", is_flag=True, help="Only show what would change.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def apply_command(file: str, dry_run: bool, as_json: bool) -> None:
    """Create or update units, domains, rules, connectors and clients from FILE
    (YAML; '-' reads stdin). Idempotent; --dry-run prints the plan."""
    from idp.config import apply as config_apply

    try:
        cfg = config_apply.parse(sys.stdin.read()) if file == "-" else config_apply.load(file)
        result = config_apply.apply(cfg, dry_run=dry_run, actor=f"{actor()}:apply")
    except config_apply.ApplyError as exc:
        if as_json:
            click.echo(json.dumps({"error": "apply_failed", "messages": exc.messages,
                                   "applied": exc.applied}))
            raise SystemExit(1) from None
        lines = "\n".join(f"  {m}" for m in exc.messages)
        done = f" after {exc.applied} change(s)" if exc.applied else "; nothing was changed"
        raise click.ClickException(f"cannot apply {file}{done}:\n{lines}") from None
    if as_json:
        click.echo(json.dumps(result.to_dict(), sort_keys=True, default=str))
        return
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not result.changes:
        click.echo("no changes")
        return
    for change in result.changes:
        click.echo(change.text())
    if dry_run:
        click.echo(f"dry run: {len(result.changes)} change(s) not applied")
        return
    for ch in result.challenges:
        click.echo(f'publish: {ch["record_name"]}.  IN  TXT  "{ch["value"]}"')
    for entry in result.secrets:
        secret = entry.get("client_secret")
        click.echo(f"client {entry['name']}: client_id {entry['client_id']}"
                   + (f", client_secret {secret} (shown once)" if secret else ""))


@click.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of stdout.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of YAML.")
@with_appcontext
def export_command(output: str | None, as_json: bool) -> None:
    """Print the configuration in the `idp apply` format (no secrets)."""
    from idp.config import export as config_export

    text = (
        json.dumps(config_export.export_config(), indent=2) + "\n"
        if as_json
        else config_export.export_yaml()
    )
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
