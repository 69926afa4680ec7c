"""``idp master-key generate|rotate``: a new master key, and re-sealing every sealed
value under it (``docs/operations.md``, "Master-key rotation")."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from flask.cli import with_appcontext

from idp.crypto import master_key
from idp.crypto.primitives import (
    MasterKeyError,
    Sealer,
    generate_master_key,
    load_master_key,
    parse_master_key,
    parse_previous_keys,
)
from idp.crypto.sealed_fields import SEALED_FIELDS
from idp.services import services, settings


@click.group("master-key")
def master_key_group() -> None:
    """The master key: generate a new one, re-seal everything under it."""


@master_key_group.command("generate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def generate_command(file: Path) -> None:
    """Write a new random master key to FILE (mode 0600; an existing file is refused)."""
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise click.ClickException(f"{file} exists; not overwritten") from exc
    with os.fdopen(fd, "w") as out:
        out.write(generate_master_key() + "\n")
    click.echo(f"new master key written to {file}")


@master_key_group.command("rotate")
@click.option(
    "--new-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Re-seal under this key (nodes must already accept it through "
    "IDP_MASTER_KEY_PREVIOUS). Without it: re-seal under IDP_MASTER_KEY whatever "
    "IDP_MASTER_KEY_PREVIOUS still seals.",
)
@click.option("--check", is_flag=True,
              help="Change nothing; count values not yet under the target key, exit 1 if any.")
@click.option("--batch-size", default=200, show_default=True, type=click.IntRange(1, 10000),
              help="Rows per transaction.")
@click.option("--max-batches", type=click.IntRange(1), default=None,
              help="Stop after this many batches (a rerun goes on where it stopped).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def rotate_command(new_key_file: Path | None, check: bool, batch_size: int,
                   max_batches: int | None, as_json: bool) -> None:
    """Re-seal every sealed value (signing keys, outbox bodies, connector secrets, LDAP
    bind passwords, TOTP secrets, ...) under the new master key, in batches of one
    transaction each. Idempotent: rerun it after a crash. Nodes keep serving."""
    conf = settings()
    try:
        current = load_master_key(conf.master_key, conf.master_key_file)
        previous = parse_previous_keys(conf.master_key_previous)
        new = parse_master_key(new_key_file.read_text()) if new_key_file else None
    except MasterKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    app_sealer = services().sealer
    target = Sealer(new, [current, *previous]) if new is not None else app_sealer
    stored = master_key.keyed_hash_stored()
    if not stored and not check:
        if new is None and previous:
            # Which key did the nodes hash with? Only the one that was current before
            # any switch: the procedure stores it in its first step.
            raise click.ClickException(
                "the keyed-hash key is not stored yet: run the first rotation with the "
                "key the nodes use now as IDP_MASTER_KEY and --new-key-file "
                "(docs/operations.md, \"Master-key rotation\")")
        master_key.ensure_keyed_hash_secret(app_sealer, current)
    try:
        report = master_key.rotate(target, dry_run=check, batch_size=batch_size,
                                   max_batches=max_batches)
    except MasterKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    result = report.as_dict()
    result["keyed_hash_stored"] = stored or not check
    if as_json:
        click.echo(json.dumps(result))
    else:
        verb = "to re-seal" if check else "re-sealed"
        for f in SEALED_FIELDS:
            c = report.fields.get(f.name)
            if c is not None:
                click.echo(f"{f.name:40} {verb}: {c.stale if check else c.resealed:6}"
                           f"  already current: {c.current}")
        click.echo("complete" if report.complete else
                   "stopped early (--max-batches): run it again to finish")
    if check and (report.stale or not stored):
        raise SystemExit(1)
    if not report.complete:
        raise SystemExit(3)
