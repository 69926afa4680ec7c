"""``idp keys list|rotate|retire``: signing-key life cycle.

A key is ``active`` (signs new tokens; one per algorithm), then ``published`` after a
rotation (still in the JWKS, so tokens it signed keep verifying), then ``retired``
(gone from the JWKS). Every worker picks up a change within the key ring's refresh
interval, without a restart.
"""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from idp.crypto import keyring as keyring_mod
from idp.services import keyring, services
from idp.store import keys_repo
from idp.store.models import SigningKey
from idp.store.unit_of_work import atomic


def describe(key: SigningKey) -> dict[str, str | None]:
    """The public facts about one key (never its private part)."""
    return {
        "kid": key.kid,
        "alg": key.alg,
        "state": key.state,
        "created": key.created_at.isoformat(),
        "retired": key.retired_at.isoformat() if key.retired_at else None,
    }


@click.group("keys")
def keys_group() -> None:
    """Signing keys: list, rotate, activate, retire."""


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def list_command(as_json: bool) -> None:
    """List every signing key with its algorithm, state and creation time."""
    rows = [describe(k) for k in keys_repo.listing()]
    if as_json:
        click.echo(json.dumps({"keys": rows}))
        return
    if not rows:
        click.echo("no signing keys; run `idp init`")
    for r in rows:
        click.echo(f"{r['kid']}  {r['alg']:6}  {r['state']:9}  {r['created']}")


@keys_group.command("rotate")
@click.option(
    "--alg",
    type=click.Choice(keyring_mod.SUPPORTED_ALGS),
    default=keyring_mod.DEFAULT_ALG,
    show_default=True,
)
@click.option(
    "--publish-first",
    is_flag=True,
    help="Publish the new key only (in the JWKS, not signing); make it sign later with "
    "`idp keys activate KID`, once verifiers had time to fetch the JWKS.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def rotate_command(alg: str, publish_first: bool, as_json: bool) -> None:
    """Create a new active key for ALG; the previous one stays published in the JWKS
    (tokens it signed keep verifying) until `idp keys retire` removes it. With
    --publish-first the new key is only published, and the current key keeps signing
    until `idp keys activate`."""
    row = keyring_mod.generate(alg, services().sealer)
    previous = [k.kid for k in keys_repo.all_keys() if k.alg == alg and k.state == "active"]
    with atomic():
        if publish_first:
            keys_repo.add_published(row)
        else:
            keys_repo.add_active(row)
    keyring().refresh(force=True)
    state = "published" if publish_first else "active"
    result = {"kid": row.kid, "alg": alg, "state": state,
              "previous": [] if publish_first else previous}
    if as_json:
        click.echo(json.dumps(result))
        return
    if publish_first:
        click.echo(f"new {alg} key {row.kid} published, not signing yet; after the JWKS "
                   f"cache time run `idp keys activate {row.kid}`")
        return
    click.echo(f"new active {alg} key {row.kid}")
    for kid in previous:
        click.echo(f"{kid} stays published until `idp keys retire {kid}`")


@keys_group.command("activate", context_settings={"ignore_unknown_options": True})
@click.argument("kid")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def activate_command(kid: str, as_json: bool) -> None:
    """Make the published key KID sign new tokens of its algorithm; the key it replaces
    stays published (tokens it signed keep verifying) until retired."""
    with atomic():
        done = keys_repo.activate(kid)
    if done is None:
        raise click.ClickException(f"{kid!r} is not a published signing key")
    key, replaced = done
    keyring().refresh(force=True)
    if as_json:
        click.echo(json.dumps({**describe(key), "previous": replaced}))
        return
    click.echo(f"{kid} is now the active {key.alg} key")
    for old in replaced:
        click.echo(f"{old} stays published until `idp keys retire {old}`")


# A kid is a JWK thumbprint (base64url), so one in 64 starts with "-": never read it
# as an option.
@keys_group.command("retire", context_settings={"ignore_unknown_options": True})
@click.argument("kid")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def retire_command(kid: str, as_json: bool) -> None:
    """Remove the published key KID from the JWKS. The active key cannot be retired:
    rotate first."""
    existing = {k.kid: k for k in keys_repo.listing()}
    key = existing.get(kid)
    if key is None:
        raise click.ClickException(f"no signing key with kid {kid!r}")
    if key.state == "active":
        raise click.ClickException(
            f"{kid} is the active {key.alg} key and still signs tokens; "
            f"run `idp keys rotate --alg {key.alg}` first, then retire it"
        )
    if key.state == "retired":
        raise click.ClickException(f"{kid} is already retired")
    with atomic():
        retired = keys_repo.retire(kid)
    if retired is None:
        raise click.ClickException(f"{kid} could not be retired (state changed meanwhile)")
    keyring().refresh(force=True)
    if as_json:
        click.echo(json.dumps(describe(retired)))
        return
    click.echo(f"retired {kid}; it is no longer in the JWKS")
