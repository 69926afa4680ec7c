"""``idp connectors add|list|show|delete|set|link|links|unlink``: upstream SSO
connectors of a unit, and the links of upstream subjects to accounts the unit's
SCIM provisioned without an e-mail address.

``add`` prints what the admin registers at the upstream: the ``callback_url`` of an
OIDC connector (Google, Entra, Okta) or the ``acs_url`` and ``metadata_url`` of a
SAML connector. The rules live in :mod:`idp.federation.admin`.
"""

from __future__ import annotations

import json
from typing import Any

import click
from flask.cli import with_appcontext

from connectors import KINDS, ConfigurationError
from idp import audit
from idp.cli.units import actor


def _echo(obj: dict[str, Any] | list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(obj, sort_keys=True))
        return
    rows = obj if isinstance(obj, list) else [obj]
    for row in rows:
        click.echo(f"{row['id']}  {row['kind']:<9}  unit={row['unit_id']}  {row['name']}")
        for key in ("callback_url", "acs_url", "metadata_url"):
            if key in row:
                click.echo(f"    {key}: {row[key]}")


def _json_option(value: str | None, what: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"{what} must be JSON") from exc


@click.group("connectors")
def connectors_group() -> None:
    """Upstream identity providers (Google, Microsoft Entra ID, Okta, OIDC, SAML)."""


@connectors_group.command("add")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.option("--kind", type=click.Choice(KINDS), required=True)
@click.option("--name", default=None, help="Label shown on the login page.")
@click.option("--issuer", default=None,
              help="OIDC issuer URL (Okta, generic); for Microsoft the authority.")
@click.option("--client-id", default=None)
@click.option("--client-secret", default=None, envvar="IDP_CONNECTOR_CLIENT_SECRET",
              help="Or set IDP_CONNECTOR_CLIENT_SECRET to keep it out of the shell history.")
@click.option("--metadata", default=None, help="SAML IdP metadata: a file or an https URL.")
@click.option("--tenant", "tenants", multiple=True, help="Allowed Entra tenant id (repeat).")
@click.option("--hd", "hosted_domains", multiple=True, help="Google Workspace domain (repeat).")
@click.option("--scope", "scopes", multiple=True, help="Scopes to request (repeat).")
@click.option("--mapping", default=None, help='JSON, e.g. {"personnel_number": "employeeId"}.')
@click.option("--role-map", default=None, help='JSON, e.g. {"Purchasing": "buyer"}.')
@click.option("--default-role", "default_roles", multiple=True, help="Role every member gets.")
@click.option("--subject-attribute", default=None, help="SAML: attribute holding the stable id.")
@click.option("--scim-external-id-claim", default=None,
              help="Claim (SAML: attribute) carrying the SCIM externalId: sub for Okta, oid "
              "for Entra. Links users the unit's SCIM created without an e-mail address.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def add(unit_ref: str, kind: str, name: str | None, issuer: str | None,
        client_id: str | None, client_secret: str | None, metadata: str | None,
        tenants: tuple[str, ...], hosted_domains: tuple[str, ...], scopes: tuple[str, ...],
        mapping: str | None, role_map: str | None, default_roles: tuple[str, ...],
        subject_attribute: str | None, scim_external_id_claim: str | None,
        as_json: bool) -> None:
    """Add a connector to a unit and print the URLs to register upstream."""
    from idp.federation import admin

    extra: dict[str, Any] = {}
    for key, value in (("mapping", _json_option(mapping, "--mapping")),
                       ("role_map", _json_option(role_map, "--role-map")),
                       ("subject_attribute", subject_attribute),
                       ("scim_external_id_claim", scim_external_id_claim)):
        if value is not None:
            extra[key] = value
    if default_roles:
        extra["default_roles"] = list(default_roles)
    try:
        row = admin.create(unit_ref, kind, name=name, issuer=issuer, client_id=client_id,
                           client_secret=client_secret, metadata=metadata, tenants=tenants,
                           hosted_domains=hosted_domains, scopes=scopes, extra=extra,
                           actor=actor())
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    _echo(admin.describe(row), as_json)


@connectors_group.command("list")
@click.option("--unit", "unit_ref", default=None, help="Only this unit (id or slug).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_(unit_ref: str | None, as_json: bool) -> None:
    """List connectors."""
    from idp.federation import admin
    from idp.store import connectors_repo

    unit_id = None
    if unit_ref is not None:
        unit = connectors_repo.unit_by_ref(unit_ref)
        if unit is None:
            raise click.ClickException(f"no unit {unit_ref!r}")
        unit_id = unit.id
    rows = [admin.describe(r) for r in connectors_repo.list_all(unit_id)]
    if as_json:
        click.echo(json.dumps(rows, sort_keys=True))
    else:
        _echo(rows, False)


@connectors_group.command("show")
@click.argument("connector_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def show(connector_id: str, as_json: bool) -> None:
    """Show a connector and the URLs to register upstream (never its secret)."""
    from idp.federation import admin
    from idp.store import connectors_repo

    row = connectors_repo.get(connector_id)
    if row is None:
        raise click.ClickException(f"no connector {connector_id!r}")
    _echo(admin.describe(row), as_json)


@connectors_group.command("delete")
@click.argument("connector_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def delete(connector_id: str, as_json: bool) -> None:
    """Delete a connector; its linked upstream identities go with it. Its id is
    never given to another connector."""
    from idp.config.connectors import delete as delete_connector

    if not delete_connector(connector_id, actor()):
        raise click.ClickException(f"no connector {connector_id!r}")
    if as_json:
        click.echo(json.dumps({"id": connector_id, "deleted": True}))
    else:
        click.echo(f"deleted {connector_id}")


@connectors_group.command("set")
@click.argument("connector_id")
@click.option("--scim-external-id-claim", required=True,
              help='Claim carrying the SCIM externalId (sub, oid, ...); "" turns it off.')
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def set_(connector_id: str, scim_external_id_claim: str, as_json: bool) -> None:
    """Change a connector's SCIM externalId claim."""
    from idp.federation import admin

    try:
        row = admin.set_external_id_claim(connector_id, scim_external_id_claim or None,
                                          actor())
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    _echo(admin.describe(row), as_json)


def _link_echo(link: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(link, sort_keys=True, default=str))
    else:
        click.echo(f"{link['id']}  account={link['account_id']}  {link['issuer']}  "
                   f"{link['subject']}")


def _unit_of(connector_id: str) -> str:
    from idp.store import connectors_repo

    row = connectors_repo.get(connector_id)
    if row is None:
        raise click.ClickException(f"no connector {connector_id!r}")
    return row.unit_id


@connectors_group.command("link")
@click.argument("connector_id")
@click.option("--account", "account_ref", required=True,
              help="The unit's SCIM user: account id, SCIM id or userName.")
@click.option("--subject", required=True,
              help="The upstream subject (sub; Entra: <tid>/<oid>; SAML: the NameID).")
@click.option("--issuer", default=None, help="The upstream issuer (default: the connector's).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def link(connector_id: str, account_ref: str, subject: str, issuer: str | None,
         as_json: bool) -> None:
    """Link an upstream subject to a user the unit's SCIM created without an address."""
    from idp.federation import admin
    from idp.rights import SYSTEM

    try:
        row = admin.link_subject(SYSTEM, _unit_of(connector_id), connector_id, account_ref,
                                 subject, issuer, who=audit.as_actor(actor()))
    except admin.LinkRefused as exc:
        raise click.ClickException(f"{exc} ({exc.code})") from exc
    _link_echo(admin.describe_link(row), as_json)


@connectors_group.command("links")
@click.argument("connector_id")
@click.option("--account", "account_id", default=None, help="Only this account id.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def links(connector_id: str, account_id: str | None, as_json: bool) -> None:
    """List the upstream subjects linked through a connector."""
    from idp.federation import admin
    from idp.rights import SYSTEM

    rows = [admin.describe_link(r) for r in
            admin.links(SYSTEM, _unit_of(connector_id), connector_id, account_id)]
    if as_json:
        click.echo(json.dumps(rows, sort_keys=True, default=str))
        return
    for row in rows:
        _link_echo(row, False)


@connectors_group.command("unlink")
@click.argument("connector_id")
@click.argument("link_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def unlink(connector_id: str, link_id: str, as_json: bool) -> None:
    """Remove a link (see ``idp connectors links``); the account stays."""
    from idp.federation import admin
    from idp.rights import SYSTEM

    try:
        admin.unlink_subject(SYSTEM, _unit_of(connector_id), connector_id, link_id,
                             who=audit.as_actor(actor()))
    except admin.LinkRefused as exc:
        raise click.ClickException(f"{exc} ({exc.code})") from exc
    if as_json:
        click.echo(json.dumps({"id": link_id, "unlinked": True}))
    else:
        click.echo(f"unlinked {link_id}")
