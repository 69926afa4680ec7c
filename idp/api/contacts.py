"""New contacts and their invitations (issue 12, items 4 and 5): add a new person to
a unit, and resend, revoke or read the invitation of an access. The rules are in
:mod:`idp.accounts.invites`; this module validates and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from idp.accounts import invites
from idp.accounts.invites import (
    ContactRefused,
    InvitationState,
    NewContact,
    PersonExists,
    SendLimit,
)
from idp.api import bp
from idp.api.endpoint import Call, endpoint
from idp.api.problems import Problem, conflict, forbidden, invalid, not_found
from idp.factors import passwords
from idp.rights import NotPermitted


class ContactIn(BaseModel):
    """A new person: their account is created and given an access to the unit."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320, description="Must not belong to an account yet")
    given_name: str = Field(min_length=1, max_length=200)
    family_name: str = Field(min_length=1, max_length=200)
    mobile: str | None = Field(
        None, max_length=40,
        description="With the country code: + and 8 to 15 digits. With platform access "
        "the invitation then also needs a registration code sent by SMS.",
    )
    roles: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=20, description="Roles defined in the unit"
    )
    platform_access: bool = Field(
        description="true: invited to register and sign in; false: only notifications"
    )
    notifications: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        None, max_length=50,
        description="Events that send this person an e-mail; null: the roles' defaults",
    )
    send_welcome: bool = Field(
        False, description="Without platform access: send a welcome e-mail"
    )
    language: Literal["en", "de"] = Field("en", description="Language of the e-mails")


class InvitationOut(BaseModel):
    """An invitation as an administrator sees it (never its link or code)."""

    id: str
    status: Literal["pending", "expired", "used", "revoked"]
    reason: Literal["revoked", "replaced", "too_many_attempts"] | None = Field(
        description="Why a revoked invitation ended"
    )
    sms_required: bool
    attempts: int = Field(description="Wrong SMS codes entered")
    created_at: datetime
    sent_at: datetime | None
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


class ContactOut(BaseModel):
    """The person and their new access."""

    account_id: str
    access_id: str
    unit_id: str
    email: str
    given_name: str
    family_name: str
    mobile: str | None
    roles: list[str]
    status: Literal["invited", "active"]
    platform_access: bool
    notifications: list[str] | None
    details_sent_at: datetime | None
    invitation: InvitationOut | None
    password_status: Literal["initial", "reset_by_staff", "set_by_user"] | None = Field(
        None, description="The person's password status (initial: a generated password "
        "went out with the invitation); null: none. Never the password itself",
    )


def too_many(exc: SendLimit) -> Problem:
    """429 with ``Retry-After`` for a unit that spent its hourly invitations."""
    return Problem(
        429, exc.code, exc.detail, headers={"Retry-After": str(max(1, exc.retry_after))}
    )


def _invitation(state: InvitationState) -> InvitationOut:
    return InvitationOut.model_validate(state, from_attributes=True)


@endpoint(
    bp, "POST", "/units/{unit_id}/contacts", summary="Add a new person as a contact",
    tag="contacts", body=ContactIn, response=ContactOut, status=201,
    permission="users.manage", extra_statuses=(409,),
)
def create_contact(call: Call, unit_id: str) -> ContactOut:
    """Creates the person's account and their access to the unit in one transaction.
    With `platform_access` the access is `invited` and an invitation e-mail goes out
    (with an SMS registration code when `mobile` is given); without, it is `active`,
    receives notifications only, and `send_welcome` sends a welcome e-mail. An
    address that already has an account is refused with 409 `person_exists`: link
    the existing user instead (`POST /units/{unit_id}/accesses`)."""
    body: ContactIn = call.body
    data = NewContact(
        email=body.email, given_name=body.given_name, family_name=body.family_name,
        mobile=body.mobile, roles=body.roles, platform_access=body.platform_access,
        notifications=body.notifications, send_welcome=body.send_welcome,
        language=body.language,
    )
    try:
        made = invites.add_contact(unit_id, data, call.actor)
    except SendLimit as exc:
        raise too_many(exc) from exc
    except ContactRefused as exc:
        raise invalid(exc.code, exc.detail, f"/body/{exc.field}" if exc.field else None) from exc
    except NotPermitted as exc:  # a role granting more than the caller holds
        raise forbidden(exc.permission) from exc
    except PersonExists as exc:
        raise conflict(
            "person_exists",
            "This address already belongs to a Unitgate user. Link the existing user "
            "instead: POST /api/v1/units/{unit_id}/accesses.",
        ) from exc
    account, access = made.account, made.access
    return ContactOut(
        account_id=account.id, access_id=access.id, unit_id=access.unit_id,
        email=account.email, given_name=account.given_name,
        family_name=account.family_name, mobile=account.phone_number,
        roles=list(access.roles or []), status=access.status,
        platform_access=bool(access.platform_access), notifications=access.notifications,
        details_sent_at=access.details_sent_at,
        invitation=_invitation(made.invitation) if made.invitation is not None else None,
        password_status=passwords.status(account.id),
    )


def _access(unit_id: str, access_id: str) -> tuple[str, str]:
    access = invites.access_in_unit(access_id, unit_id)
    if access is None:
        raise not_found("access")
    return access.account_id, access.id


@endpoint(
    bp, "POST", "/units/{unit_id}/accesses/{access_id}/invitation",
    summary="Send the invitation again", tag="contacts", response=InvitationOut,
    permission="users.manage", extra_statuses=(409,),
)
def resend_invitation(call: Call, unit_id: str, access_id: str) -> InvitationOut:
    """Sends a new invitation (e-mail, and SMS code when the person has a mobile
    number). The previous link and code stop working. Only for an `invited` access
    with platform access (else 409 `not_invited`)."""
    account_id, access_id = _access(unit_id, access_id)
    try:
        sent = invites.resend(account_id, unit_id, call.actor)
    except SendLimit as exc:
        raise too_many(exc) from exc
    if not sent:
        raise conflict(
            "not_invited",
            "This access is not waiting for registration: only an invited access with "
            "platform access gets an invitation.",
        )
    state = invites.status(access_id)
    if state is None:  # pragma: no cover - resend just wrote one
        raise Problem(409, "not_invited", "No invitation was sent.")
    return _invitation(state)


@endpoint(
    bp, "DELETE", "/units/{unit_id}/accesses/{access_id}/invitation",
    summary="Revoke the invitation", tag="contacts", permission="users.manage",
    extra_statuses=(409,),
)
def revoke_invitation(call: Call, unit_id: str, access_id: str) -> None:
    """Ends the pending invitation: its link and code stop working at once. 409
    `no_pending_invitation` when none is pending. The access stays `invited`;
    resend to invite again."""
    account_id, _ = _access(unit_id, access_id)
    if not invites.revoke(account_id, unit_id, call.actor):
        raise conflict("no_pending_invitation", "This access has no pending invitation.")


@endpoint(
    bp, "GET", "/units/{unit_id}/accesses/{access_id}/invitation",
    summary="The invitation's status", tag="contacts", response=InvitationOut,
    permission="users.read",
)
def get_invitation(call: Call, unit_id: str, access_id: str) -> InvitationOut:
    """The newest invitation of the access: pending, expired, used or revoked, when
    it was sent and when it expires. Never the link or the code."""
    _, access_id = _access(unit_id, access_id)
    state = invites.status(access_id)
    if state is None:
        raise not_found("invitation")
    return _invitation(state)
