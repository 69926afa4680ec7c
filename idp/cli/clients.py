"""``idp clients create|update|list|show|delete``: the merchants (OIDC relying parties).

``create`` prints the client secret exactly once; only its keyed hash is stored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from idp.cli.units import actor
from idp.release import clients
from idp.store.models import Client


@click.group("clients")
def clients_group() -> None:
    """OIDC clients (merchants): create, update, list, show, delete."""


def _print_client(data: dict[str, Any]) -> None:
    for key, value in data.items():
        if isinstance(value, list):
            value = " ".join(value) or "-"
        elif isinstance(value, dict):
            value = json.dumps(value)
        click.echo(f"{key}: {value if value is not None else '-'}")


# A client_id is base64url, so one in 64 starts with "-": never read it as an option.
ID_ARGUMENT = {"ignore_unknown_options": True}


@clients_group.command("create")
@click.option("--name", required=True, help="Display name shown to employees.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Repeatable.")
@click.option("--post-logout-uri", "post_logout_uris", multiple=True, help="Repeatable.")
@click.option("--scope", default=clients.DEFAULT_SCOPE, show_default=True)
@click.option(
    "--grant-type",
    "grant_types",
    multiple=True,
    type=click.Choice(clients.GRANT_TYPES),
    help="Repeatable. Default: authorization_code and refresh_token.",
)
@click.option("--public", is_flag=True, help="A public client (no secret; PKCE required).")
@click.option("--auth-method", type=click.Choice(clients.AUTH_METHODS), default=None)
@click.option(
    "--jwks",
    "jwks_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JWK Set file with the client's public keys (private_key_jwt).",
)
@click.option("--jwks-uri", default=None,
              help="Where the client publishes its public keys, instead of --jwks.")
@click.option("--id-token-alg", type=click.Choice(clients.ID_TOKEN_ALGS), default="ES256")
@click.option("--require-par", is_flag=True,
              help="Accept only pushed authorization requests (RFC 9126).")
@click.option("--dpop-bound", is_flag=True,
              help="Issue tokens only with a DPoP proof (RFC 9449).")
@click.option("--required-claim", "required_claims", multiple=True,
              help="Repeatable: a claim the merchant requires (default: sub and email); "
                   "employees may leave out every other one.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def create_command(
    name: str,
    redirect_uris: tuple[str, ...],
    post_logout_uris: tuple[str, ...],
    scope: str,
    grant_types: tuple[str, ...],
    public: bool,
    auth_method: str | None,
    jwks_file: Path | None,
    jwks_uri: str | None,
    id_token_alg: str,
    require_par: bool,
    dpop_bound: bool,
    required_claims: tuple[str, ...],
    as_json: bool,
) -> None:
    """Register a client; prints client_id and (once) client_secret."""
    jwks = _read_jwks(jwks_file)
    try:
        client, secret = clients.register(
            name,
            list(redirect_uris),
            post_logout_redirect_uris=list(post_logout_uris),
            scope=scope,
            grant_types=list(grant_types) or list(clients.DEFAULT_GRANT_TYPES),
            public=public,
            auth_method=auth_method,
            jwks=jwks,
            id_token_alg=id_token_alg,
            require_par=require_par,
            dpop_bound=dpop_bound,
            jwks_uri=jwks_uri,
            required_claims=list(required_claims) or None,
            actor=actor(),
        )
    except clients.ClientRegistrationError as exc:
        raise click.UsageError(str(exc)) from exc
    data = {**clients.describe(client), "client_secret": secret}
    if as_json:
        click.echo(json.dumps(data))
        return
    _print_client(data)
    if secret:
        click.echo("The client secret is shown only now; store it safely.")


def _read_jwks(jwks_file: Path | None) -> dict[str, Any] | None:
    if jwks_file is None:
        return None
    try:
        loaded: dict[str, Any] = json.loads(jwks_file.read_text())
    except (OSError, ValueError) as exc:
        raise click.UsageError(f"--jwks: cannot read a JSON JWK Set: {exc}") from exc
    return loaded


@clients_group.command("update", context_settings=ID_ARGUMENT)
@click.argument("client_id")
@click.option("--name", default=None, help="New display name.")
@click.option("--redirect-uri", "redirect_uris", multiple=True,
              help="Repeatable; replaces the registered list.")
@click.option("--post-logout-uri", "post_logout_uris", multiple=True,
              help="Repeatable; replaces the registered list.")
@click.option("--scope", default=None, help="Replaces the allowed scopes.")
@click.option("--grant-type", "grant_types", multiple=True,
              type=click.Choice(clients.GRANT_TYPES), help="Repeatable; replaces the list.")
@click.option("--auth-method", type=click.Choice(clients.AUTH_METHODS), default=None)
@click.option("--jwks", "jwks_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JWK Set file with the client's public keys (private_key_jwt).")
@click.option("--jwks-uri", default=None,
              help="Where the client publishes its public keys (replaces --jwks).")
@click.option("--id-token-alg", type=click.Choice(clients.ID_TOKEN_ALGS), default=None)
@click.option("--require-par/--no-require-par", default=None,
              help="Accept only pushed authorization requests (RFC 9126), or not.")
@click.option("--dpop-bound/--no-dpop-bound", default=None,
              help="Issue tokens only with a DPoP proof (RFC 9449), or not.")
@click.option("--required-claim", "required_claims", multiple=True,
              help="Repeatable; replaces the claims the merchant requires.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def update_command(
    client_id: str,
    name: str | None,
    redirect_uris: tuple[str, ...],
    post_logout_uris: tuple[str, ...],
    scope: str | None,
    grant_types: tuple[str, ...],
    auth_method: str | None,
    jwks_file: Path | None,
    jwks_uri: str | None,
    id_token_alg: str | None,
    require_par: bool | None,
    dpop_bound: bool | None,
    required_claims: tuple[str, ...],
    as_json: bool,
) -> None:
    """Change a client in place; only the options given change, validated like
    `create`. A new secret is printed (once) only when the change moves the client to
    a secret-based auth method."""
    _require(client_id)
    given: dict[str, Any] = {
        "name": name,
        "redirect_uris": list(redirect_uris) or None,
        "post_logout_redirect_uris": list(post_logout_uris) or None,
        "scope": scope,
        "grant_types": list(grant_types) or None,
        "auth_method": auth_method,
        "jwks": _read_jwks(jwks_file),
        "jwks_uri": jwks_uri,
        "id_token_alg": id_token_alg,
        "require_par": require_par,
        "dpop_bound": dpop_bound,
        "required_claims": list(required_claims) or None,
    }
    fields = {k: v for k, v in given.items() if v is not None}
    if not fields:
        raise click.UsageError("nothing to change: give at least one option")
    try:
        from idp.interaction import rp_logout

        if "redirect_uris" in fields:  # the front channel stays on a redirect URI's origin
            kept = rp_logout.channels(client_id).frontchannel_logout_uri
            if kept:
                rp_logout.validate_channels(fields["redirect_uris"], None, kept)
        client, secret = clients.update(client_id, actor=actor(), **fields)
    except clients.ClientRegistrationError as exc:
        raise click.UsageError(str(exc)) from exc
    data = {**clients.describe(client), "client_secret": secret}
    if as_json:
        click.echo(json.dumps(data))
        return
    _print_client(data)
    if secret:
        click.echo("The new client secret is shown only now; store it safely.")


def _require(client_id: str) -> Client:
    client = clients.get(client_id)
    if client is None:
        raise click.ClickException(f"no client {client_id!r}")
    return client


@clients_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def list_command(as_json: bool) -> None:
    """List every client."""
    rows = [clients.describe(c) for c in clients.list_all()]
    if as_json:
        click.echo(json.dumps({"clients": rows}))
        return
    if not rows:
        click.echo("no clients; create one with `idp clients create`")
    for r in rows:
        click.echo(f"{r['client_id']}  {r['token_endpoint_auth_method']:20}  {r['client_name']}")


@clients_group.command("show", context_settings=ID_ARGUMENT)
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def show_command(client_id: str, as_json: bool) -> None:
    """Show one client's metadata (never its secret)."""
    data = clients.describe(_require(client_id))
    if as_json:
        click.echo(json.dumps(data))
    else:
        _print_client(data)


@clients_group.command("delete", context_settings=ID_ARGUMENT)
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def delete_command(client_id: str, as_json: bool) -> None:
    """Delete a client; its tokens stop working within seconds on every node."""
    _require(client_id)
    clients.delete(client_id, actor())
    if as_json:
        click.echo(json.dumps({"client_id": client_id, "deleted": True}))
    else:
        click.echo(f"deleted {client_id}")


@clients_group.command("logout-channels", context_settings=ID_ARGUMENT)
@click.argument("client_id")
@click.option("--backchannel-uri", default=None,
              help="OIDC Back-Channel Logout URI (logout tokens are POSTed there); "
                   "an empty value removes it.")
@click.option("--backchannel-session-required/--no-backchannel-session-required",
              default=None, help="The client requires the sid claim in logout tokens.")
@click.option("--frontchannel-uri", default=None,
              help="OIDC Front-Channel Logout URI (framed by the logout page); same "
                   "scheme, host and port as a redirect URI; an empty value removes it.")
@click.option("--frontchannel-session-required/--no-frontchannel-session-required",
              default=None, help="The client requires iss and sid in the frame's query.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def logout_channels_command(
    client_id: str,
    backchannel_uri: str | None,
    backchannel_session_required: bool | None,
    frontchannel_uri: str | None,
    frontchannel_session_required: bool | None,
    as_json: bool,
) -> None:
    """Show or change a client's logout channels (back-channel and front-channel
    logout); only the options given change."""
    from idp.interaction import rp_logout

    _require(client_id)
    now = rp_logout.channels(client_id)
    given = (backchannel_uri, backchannel_session_required, frontchannel_uri,
             frontchannel_session_required)
    if any(v is not None for v in given):
        try:
            now = rp_logout.set_channels(
                client_id,
                now.backchannel_logout_uri if backchannel_uri is None else backchannel_uri,
                now.backchannel_logout_session_required
                if backchannel_session_required is None else backchannel_session_required,
                now.frontchannel_logout_uri if frontchannel_uri is None else frontchannel_uri,
                now.frontchannel_logout_session_required
                if frontchannel_session_required is None else frontchannel_session_required,
                actor=actor(),
            )
        except clients.ClientRegistrationError as exc:
            raise click.UsageError(str(exc)) from exc
    data = {"client_id": client_id, **now.describe()}
    if as_json:
        click.echo(json.dumps(data))
    else:
        _print_client(data)
