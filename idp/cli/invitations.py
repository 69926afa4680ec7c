"""``idp contacts add`` and ``idp invitations list|resend|revoke``: new contacts and
their invitations from the command line (issue 12, item 9). The rules are in
:mod:`idp.accounts.invites`; the commands act as the operator (``system``).

With ``--json`` each command prints one JSON document; a refusal prints
``{"error": code, "error_description": ...}`` and exits 1.
"""

from __future__ import annotations

from typing import Any

import click
from flask.cli import with_appcontext

from idp.cli.units import echo_json, fail


def _unit_id(ref: str, as_json: bool) -> str:
    from idp.units import registry as units

    unit = units.find(ref)
    if unit is None:
        fail(as_json, "not_found", f"no business unit {ref!r}")
    return unit.id


def _account_id(email: str, as_json: bool) -> str:
    from idp.accounts import lifecycle

    try:
        account = lifecycle.by_email(lifecycle.normalise_email(email))
    except lifecycle.InvalidEmail:
        account = None
    if account is None:
        fail(as_json, "not_found", f"no account {email!r}")
    return account.id


@click.group("contacts")
def contacts_group() -> None:
    """Contacts of a unit: add a new person (linking existing users: idp accesses)."""


@contacts_group.command("add")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.option("--email", required=True)
@click.option("--given-name", required=True)
@click.option("--family-name", required=True)
@click.option("--mobile", help="With the country code: + and 8 to 15 digits.")
@click.option("--role", "roles", multiple=True, help="A role of the unit (repeatable).")
@click.option("--platform-access/--no-platform-access", default=True, show_default=True,
              help="Invite to sign in, or notifications only.")
@click.option("--notification", "notifications", multiple=True,
              help="An event that sends this person an e-mail (repeatable).")
@click.option("--send-welcome", is_flag=True, help="Without platform access: welcome e-mail.")
@click.option("--language", type=click.Choice(["en", "de"]), default="en", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def add_command(
    unit_ref: str, email: str, given_name: str, family_name: str, mobile: str | None,
    roles: tuple[str, ...], platform_access: bool, notifications: tuple[str, ...],
    send_welcome: bool, language: str, as_json: bool,
) -> None:
    """Add a new person to a unit; with platform access an invitation goes out."""
    from idp.accounts import invites
    from idp.rights import SYSTEM

    unit_id = _unit_id(unit_ref, as_json)
    data = invites.NewContact(
        email=email, given_name=given_name, family_name=family_name, mobile=mobile,
        roles=list(roles), platform_access=platform_access,
        notifications=list(notifications) or None, send_welcome=send_welcome,
        language=language,
    )
    try:
        made = invites.add_contact(unit_id, data, SYSTEM)
    except invites.ContactRefused as exc:
        fail(as_json, exc.code, exc.detail)
    except invites.PersonExists:
        fail(as_json, "person_exists",
             "this address already belongs to an account: link the existing user instead")
    out: dict[str, Any] = {
        "account_id": made.account.id, "access_id": made.access.id, "unit_id": unit_id,
        "email": made.account.email, "status": made.access.status,
        "platform_access": bool(made.access.platform_access),
        "invitation": None if made.invitation is None else {
            "id": made.invitation.id, "status": made.invitation.status,
            "sms_required": made.invitation.sms_required,
            "expires_at": made.invitation.expires_at.isoformat(),
        },
    }
    if as_json:
        echo_json(out)
        return
    click.echo(f"{made.account.email}: access {made.access.id} ({made.access.status})")
    if made.invitation is not None:
        sms = " with an SMS code" if made.invitation.sms_required else ""
        click.echo(f"    invitation sent{sms}, valid until {out['invitation']['expires_at']}")


@click.group("invitations")
def invitations_group() -> None:
    """Invitations of new contacts: list, resend, revoke."""


@invitations_group.command("list")
@click.option("--unit", "unit_ref", help="Only this unit (id or slug).")
@click.option("--pending", is_flag=True, help="Only pending invitations.")
@click.option("--limit", type=click.IntRange(1, 200), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@with_appcontext
def list_command(unit_ref: str | None, pending: bool, limit: int, as_json: bool) -> None:
    """The newest invitations first: address, unit, status, expiry (never a link)."""
    from idp.accounts import invites

    unit_ids = {_unit_id(unit_ref, as_json)} if unit_ref else None
    rows = invites.listing(unit_ids, pending, limit)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        reason = f" ({row['reason']})" if row["reason"] else ""
        click.echo(f"{row['email']}  {row['unit_id']}  {row['status']}{reason}  "
                   f"expires {row['expires_at']}")


@invitations_group.command("resend")
@click.argument("email")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def resend_command(email: str, unit_ref: str, as_json: bool) -> None:
    """Send a new invitation; the previous link and code stop working."""
    from idp.accounts import invites
    from idp.rights import SYSTEM

    unit_id = _unit_id(unit_ref, as_json)
    account_id = _account_id(email, as_json)
    try:
        sent = invites.resend(account_id, unit_id, SYSTEM)
    except invites.SendLimit as exc:
        fail(as_json, exc.code, exc.detail)
    if not sent:
        fail(as_json, "not_invited", "the access is not waiting for registration")
    if as_json:
        echo_json({"resent": True, "account_id": account_id, "unit_id": unit_id})
    else:
        click.echo(f"invitation sent again to {email}")


@invitations_group.command("revoke")
@click.argument("email")
@click.option("--unit", "unit_ref", required=True, help="Unit id or slug.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def revoke_command(email: str, unit_ref: str, as_json: bool) -> None:
    """Revoke the pending invitation: its link and code stop working."""
    from idp.accounts import invites
    from idp.rights import SYSTEM

    unit_id = _unit_id(unit_ref, as_json)
    account_id = _account_id(email, as_json)
    if not invites.revoke(account_id, unit_id, SYSTEM):
        fail(as_json, "no_pending_invitation", "no pending invitation")
    if as_json:
        echo_json({"revoked": True, "account_id": account_id, "unit_id": unit_id})
    else:
        click.echo(f"invitation of {email} revoked")
