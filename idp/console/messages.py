"""The console's texts for the services' refusal and outcome codes, in the reader's
language (the services' own messages are English and for the API)."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

CODES: dict[str, Any] = {
    # idp.accounts.invites.ContactRefused and idp.accounts.access_admin.Refused
    "invalid_email": _l("Enter a valid e-mail address."),
    "invalid_mobile": _l("Enter the mobile number with its country code, such as +49 151 2345678."),
    "required": _l("This field is required."),
    "invalid_value": _l("This value cannot be used."),
    "invalid_role": _l("Choose roles this unit has."),
    "invalid_group": _l("Choose permission groups this unit has."),
    "invalid_notifications": _l("Choose notifications from the list."),
    "unknown_event": _l("Choose notifications from the list."),
    "forbidden": _l("You cannot hand out rights you do not hold yourself."),
    "no_such_person": _l(
        "This address belongs to someone outside your units. Ask them to sign up "
        "through an invitation from their own company, or contact support."
    ),
    "access_exists": _l("This person already has an access to this unit."),
    "last_main_user": _l("The company's last main user must stay one."),
    "not_found": _l("This access no longer exists."),
    "too_many_invitations": _l("This unit sent its invitations for this hour. Try again later."),
    "not_invited": _l("There are no access details to send for this access."),
    "passwords_not_allowed": _l("This unit does not allow passwords for this access."),
    "conflict": _l("Someone changed this at the same time. Please try again."),
    # idp.interaction.impersonation
    "invalid_reason": _l("Give a reason (at most 500 characters)."),
    "invalid_minutes": _l("Choose a shorter time limit."),
    "access_inactive": _l("This access is not active."),
    "account_blocked": _l("This account cannot sign in."),
    "already_impersonating": _l("End the current impersonation first."),
    "self": _l("You cannot act as yourself."),
    "outranks": _l("You cannot act as someone who holds more rights than you."),
    # idp.rights.groups and idp.units.registry
    "group_in_use": _l("Members still hold this permission group. Take it from them first."),
    "group_taken": _l("A permission group with this name exists."),
    "unknown_permission": _l("Choose permissions from the list."),
    "slug_taken": _l("This short name is taken."),
    "invalid_name": _l("Enter a name."),
    "confirm": _l("Tick the box to confirm."),
    "nothing_selected": _l("Select at least one access."),
}


def text(code: str | None) -> str:
    """The reader's text for ``code`` (a generic one for an unknown code)."""
    found = CODES.get(code or "")
    if found is not None:
        return str(found)
    return gettext("This could not be done (%(code)s).", code=code or "error")
