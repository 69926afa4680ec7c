"""``idp accounts unlock|block|unblock|reset-totp EMAIL``: an administrator's levers.

* ``unlock`` lifts the (soft) lock-out after too many wrong one-time codes;
* ``block`` stops every sign-in and ends the account's sessions and refresh tokens;
* ``unblock`` lets a blocked account sign in again;
* ``reset-totp`` removes the TOTP second factor so the employee sets it up again.

The rules live in :mod:`idp.accounts.lifecycle`; this module only parses and reports.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
from flask.cli import with_appcontext


def _run(action: str, email: str, as_json: bool) -> None:
    from idp.accounts import lifecycle as accounts
    from idp.cli.units import actor

    fn: Callable[..., Any] = getattr(accounts, action)
    result = fn(email.strip(), actor())  # audited as cli:<user>, an operator
    if not result:
        raise click.ClickException(f"no account with email {email!r}")
    if as_json:
        click.echo(json.dumps({"email": email.strip().lower(), "action": action, "done": True}))
        return
    click.echo(f"{action}ed {email.strip()}")


@click.group("accounts")
def accounts_group() -> None:
    """Unlock, block and unblock employee accounts."""


@accounts_group.command("unlock")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def unlock_command(email: str, as_json: bool) -> None:
    """Lift the lock-out of EMAIL after too many wrong one-time codes (browsers not
    known for EMAIL get 6-digit codes again)."""
    _run("unlock", email, as_json)


@accounts_group.command("block")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def block_command(email: str, as_json: bool) -> None:
    """Block EMAIL: no sign-in, and its sessions and refresh tokens end now."""
    _run("block", email, as_json)


@accounts_group.command("unblock")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def unblock_command(email: str, as_json: bool) -> None:
    """Let the blocked account EMAIL sign in again."""
    _run("unblock", email, as_json)


@accounts_group.command("reset-totp")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def reset_totp_command(email: str, as_json: bool) -> None:
    """Remove EMAIL's TOTP second factor (audited); the employee sets it up again at
    the next sign-in that needs it."""
    from idp.accounts import lifecycle as accounts
    from idp.cli.units import actor
    from idp.factors import totp

    try:
        account = accounts.by_email(accounts.normalise_email(email.strip()))
    except accounts.InvalidEmail:
        account = None
    if account is None:
        raise click.ClickException(f"no account with email {email!r}")
    removed = totp.reset(account.id, actor())
    if as_json:
        click.echo(json.dumps({"email": account.email, "action": "reset-totp", "done": removed}))
        return
    click.echo(f"reset TOTP of {account.email}" if removed else f"{account.email} had no TOTP")
