"""``idp saml sps add|list|show|update|delete``: the SAML service providers (merchants).

``add`` reads the SP's metadata from a file or an https URL; everything the IdP
trusts about the SP (ACS and SLO URLs, certificates) comes from it. ``update``
changes a registered SP in place (new metadata of the same entity ID, options)
through :func:`idp.saml.registry.update`. See ``docs/merchants-saml.md``.
"""

from __future__ import annotations

import json
from typing import Any

import click
from flask.cli import with_appcontext

from idp.cli.units import actor
from idp.saml import registry
from idp.saml.constants import NAMEID_FORMATS
from idp.store import saml_repo
from idp.store.unit_of_work import Conflict


@click.group("saml")
def saml_group() -> None:
    """SAML 2.0 identity provider."""


@saml_group.group("sps")
def sps_group() -> None:
    """SAML service providers: add, list, show, update, delete."""


def _print(data: dict[str, Any]) -> None:
    for key, value in data.items():
        if isinstance(value, list):
            value = " ".join(str(v) for v in value) or "-"
        click.echo(f"{key}: {value if value is not None else '-'}")


@sps_group.command("add")
@click.option(
    "--metadata", "source", required=True, help="SP metadata: a file path or an https URL."
)
@click.option("--name", default=None, help="Display name (default: from the metadata).")
@click.option(
    "--nameid-format",
    type=click.Choice(list(NAMEID_FORMATS)),
    default="persistent",
    show_default=True,
    help="persistent: pairwise per SP; email: the e-mail address; transient: random.",
)
@click.option("--sign-assertion/--no-sign-assertion", default=None, help="Default: sign.")
@click.option("--sign-response/--no-sign-response", default=None, help="Default: sign.")
@click.option(
    "--require-signed-requests",
    is_flag=True,
    help="Refuse unsigned AuthnRequests and LogoutRequests (also when the metadata says "
    "AuthnRequestsSigned).",
)
@click.option("--idp-initiated", is_flag=True, help="Allow IdP-initiated SSO (off by default).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def add_command(
    source: str,
    name: str | None,
    nameid_format: str,
    sign_assertion: bool | None,
    sign_response: bool | None,
    require_signed_requests: bool,
    idp_initiated: bool,
    as_json: bool,
) -> None:
    """Register a service provider from its metadata."""
    try:
        sp = registry.register(
            registry.load_metadata(source),
            name=name,
            nameid_format=nameid_format,
            sign_assertion=sign_assertion,
            sign_response=sign_response,
            require_signed_requests=require_signed_requests,
            idp_initiated=idp_initiated,
            actor=actor(),
        )
    except registry.RegistrationError as exc:
        raise click.ClickException(str(exc)) from exc
    data = registry.describe(sp)
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(f"registered {sp.entity_id} ({sp.name})")
    _print(data)


@sps_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def list_command(as_json: bool) -> None:
    """List the registered service providers."""
    rows = [registry.describe(sp) for sp in saml_repo.listing()]
    if as_json:
        click.echo(json.dumps({"service_providers": rows}))
        return
    if not rows:
        click.echo("no SAML service providers; add one with `idp saml sps add --metadata ...`")
    for r in rows:
        click.echo(f"{r['id']}  {r['entity_id']}  {r['name']}")


@sps_group.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def show_command(ref: str, as_json: bool) -> None:
    """Show one service provider (REF: its id or entity ID)."""
    sp = saml_repo.find(ref)
    if sp is None:
        raise click.ClickException(f"no SAML service provider {ref!r}")
    data = registry.describe(sp)
    if as_json:
        click.echo(json.dumps(data))
        return
    _print(data)


@sps_group.command("delete")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def delete_command(ref: str, as_json: bool) -> None:
    """Delete a service provider (REF: its id or entity ID). Its employees can no
    longer sign in there; sessions stay."""
    facts = registry.unregister(ref, actor())
    if facts is None:
        raise click.ClickException(f"no SAML service provider {ref!r}")
    if as_json:
        click.echo(json.dumps({"deleted": facts["id"], "entity_id": facts["entity_id"]}))
        return
    click.echo(f"deleted {facts['entity_id']}")


@sps_group.command("update")
@click.argument("ref")
@click.option(
    "--metadata", "source", default=None,
    help="New SP metadata of the same entity ID: a file path or an https URL.",
)
@click.option("--name", default=None, help="Display name.")
@click.option(
    "--nameid-format",
    type=click.Choice(list(NAMEID_FORMATS)),
    default=None,
    help="persistent: pairwise per SP; email: the e-mail address; transient: random.",
)
@click.option("--sign-assertion/--no-sign-assertion", default=None, help="Sign the assertion.")
@click.option("--sign-response/--no-sign-response", default=None, help="Sign the Response.")
@click.option(
    "--require-signed-requests/--no-require-signed-requests",
    default=None,
    help="Refuse unsigned AuthnRequests and LogoutRequests (always on when the metadata "
    "says AuthnRequestsSigned).",
)
@click.option("--idp-initiated/--no-idp-initiated", default=None, help="Allow IdP-initiated SSO.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def update_command(
    ref: str,
    source: str | None,
    name: str | None,
    nameid_format: str | None,
    sign_assertion: bool | None,
    sign_response: bool | None,
    require_signed_requests: bool | None,
    idp_initiated: bool | None,
    as_json: bool,
) -> None:
    """Change a registered service provider in place (REF: its id or entity ID): new
    metadata and/or the options given; what is not given stays. Checked like
    ``add``; audited as ``saml_sp.update``."""
    sp = saml_repo.find(ref)
    if sp is None:
        raise click.ClickException(f"no SAML service provider {ref!r}")
    options = {
        "name": name, "nameid_format": nameid_format, "sign_assertion": sign_assertion,
        "sign_response": sign_response, "require_signed_requests": require_signed_requests,
        "idp_initiated": idp_initiated,
    }
    try:
        metadata = registry.load_metadata(source) if source is not None else None
        changed = sorted(registry.changes(sp.entity_id, metadata, **options))
        sp = registry.update(sp.entity_id, metadata, actor=actor(), **options)
    except registry.RegistrationError as exc:
        raise click.ClickException(str(exc)) from exc
    except Conflict as exc:
        raise click.ClickException(
            f"{ref} was changed at the same time; run the command again ({exc})"
        ) from exc
    data = {**registry.describe(sp), "changed": changed}
    if as_json:
        click.echo(json.dumps(data))
        return
    if changed:
        click.echo(f"updated {sp.entity_id} ({sp.name}): {', '.join(changed)}")
    else:
        click.echo(f"no change to {sp.entity_id}")
    _print(data)
