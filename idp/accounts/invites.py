"""New contacts and their invitations (issue 12, items 4 and 5).

Not to be confused with :mod:`idp.accounts.invitations` (pending SCIM records meeting
their holder): this module is an administrator adding a *new person* to a unit and
inviting them to register.

* :func:`add_contact` creates the account (through the one lifecycle,
  :func:`idp.accounts.lifecycle.stage_contact`) and its access
  (:func:`idp.accounts.accesses.create`) in one transaction with their audit events
  and outbox messages. With platform access the access starts ``invited`` and an
  invitation goes out; without, it is ``active`` with ``platform_access`` false (the
  person only receives notifications) and a welcome e-mail is optional.
* An invitation is an e-mail with a single-use link that expires after
  ``IDP_INVITATION_HOURS``; when the account has a mobile number, an SMS
  registration code too (:data:`CODE_LENGTH` characters of :data:`ALPHABET`, which
  has no 0/O, 1/l/I, 5/S, 2/Z, 8/B). The link's token and the code are stored only
  as keyed hashes. ``IDP_INVITATION_SMS_TRIES`` wrong codes burn the invitation.
* :func:`resend` ends the live invitation (its link and code stop working) and sends
  a new one; :func:`revoke` ends it; :func:`status` describes the newest one.
* :func:`accept` redeems a link (and code) in one transaction: the invitation is
  used, the access becomes ``active`` (:func:`idp.accounts.accesses.activate`) and
  the account's address counts as verified, because the link reached that mailbox.
  The invitation page then signs the person in (``idp.login.views_invitation``).

An address that already has an account is refused with :class:`PersonExists`: the
caller links the existing user instead (``POST /units/{unit_id}/accesses``). This
tells an administrator that the address is known to Unitgate, nothing more (no name,
no unit); see ``docs/admin-api.md`` ("New contacts and invitations").
"""

from __future__ import annotations

import re
import secrets
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import has_app_context

from idp import audit
from idp.accounts import accesses
from idp.accounts import lifecycle as accounts
from idp.i18n import ui_language
from idp.mail import outbox
from idp.provisioning import ownership
from idp.rights import Actor, require
from idp.rights.authorization import audit_actor, require_grant
from idp.services import ephemeral, hasher, settings
from idp.sms.outbox import enqueue_sms
from idp.store import invites_repo, unit_of_work
from idp.store.models import Access, AccessInvitation, AccessStatus, Account, new_id, utcnow
from idp.units import registry as units
from idp.webhooks import emit

ALPHABET = "ACDEFGHJKLMNPQRTUVWXY34679"
CODE_LENGTH = 8
TOKEN_PURPOSE = "invitation-link"
LANGUAGES = ("en", "de")
MAX_NOTIFICATIONS = 50
_MOBILE = re.compile(r"^\+[1-9][0-9]{7,14}$")
_MOBILE_NOISE = re.compile(r"[\s\-./()]")
PENDING, EXPIRED, USED, REVOKED = "pending", "expired", "used", "revoked"


class ContactRefused(ValueError):
    """Input refused by a rule; ``code`` is stable, ``field`` names the input."""

    def __init__(self, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.field = field


class SendLimit(ContactRefused):
    """The unit sent its hourly share of invitation and welcome mails
    (``IDP_INVITATIONS_PER_UNIT_HOUR``); ``retry_after`` seconds until the next hour."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too_many_invitations",
            "This unit sent as many invitations as it may this hour; try again later.",
        )
        self.retry_after = retry_after


def spend_send_budget(unit_id: str) -> None:
    """Count one invitation or welcome mail of the unit in this hour's window, or
    raise :class:`SendLimit` once the window's share is spent (nothing staged yet)."""
    now = int(time.time())
    window = now // 3600
    sent = ephemeral().incr(f"invite-sends:{unit_id}:{window}", 3600)
    if sent > settings().invitations_per_unit_hour:
        raise SendLimit(3600 - now % 3600)


class PersonExists(Exception):
    """The address already belongs to an account: link that user instead."""


@dataclass(frozen=True)
class NewContact:
    """What an administrator gives for a new person."""

    email: str
    given_name: str
    family_name: str
    mobile: str | None
    roles: list[str]
    platform_access: bool
    notifications: list[str] | None = None
    send_welcome: bool = False
    language: str = "en"


@dataclass(frozen=True)
class InvitationState:
    """What an administrator sees of an invitation (never its token or code)."""

    id: str
    status: str  # pending, expired, used, revoked
    reason: str | None  # why it ended early: revoked, replaced, too_many_attempts
    sms_required: bool
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class ContactCreated:
    account: Account
    access: Access
    invitation: InvitationState | None


def normalise_mobile(raw: str | None) -> str | None:
    """A mobile number in E.164 form (``+`` and 8 to 15 digits; spaces, dashes, dots,
    slashes and brackets dropped), None for none; :class:`ContactRefused` otherwise."""
    if raw is None or not raw.strip():
        return None
    number = _MOBILE_NOISE.sub("", raw)
    if not _MOBILE.match(number):
        raise ContactRefused(
            "invalid_mobile",
            "The mobile number needs the country code: + and 8 to 15 digits.",
            "mobile",
        )
    return number


def _has_control(value: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in value)


def new_code() -> str:
    """A fresh SMS registration code: :data:`CODE_LENGTH` characters of :data:`ALPHABET`."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(raw: str) -> str:
    """What a person typed as the code: spaces and dashes dropped, upper case."""
    return re.sub(r"[\s\-]", "", raw or "").upper()[:32]


def _code_purpose(invitation_id: str) -> str:
    return f"invitation-sms:{invitation_id}"


def _describe(row: AccessInvitation, now: datetime | None = None) -> InvitationState:
    at = now or utcnow()
    if row.used_at is not None:
        state = USED
    elif row.revoked_at is not None:
        state = REVOKED
    elif row.expires_at <= at:
        state = EXPIRED
    else:
        state = PENDING
    return InvitationState(
        id=row.id, status=state, reason=row.end_reason if state == REVOKED else None,
        sms_required=row.sms_code_hash is not None, attempts=row.attempts or 0,
        created_at=row.created_at, sent_at=row.sent_at, expires_at=row.expires_at,
        used_at=row.used_at, revoked_at=row.revoked_at,
    )


def _link(token: str) -> str:
    return f"{settings().issuer.rstrip('/')}/invitation/{token}"


def _stage_invitation(
    access: Access, account: Account, unit_name: str, who: audit.Actor, language: str
) -> tuple[AccessInvitation, list[str]]:
    """Stage a new invitation for ``access`` (ending the live one, if any), its
    e-mail and, with a mobile number, its SMS; (the row, the outbox message ids).
    The callers check that the account has an address (:class:`ValueError` otherwise)."""
    if account.email is None:
        raise ValueError("the account has no e-mail address")
    now = utcnow()
    replaced = invites_repo.end_live(access.id, now, "replaced")
    token = secrets.token_urlsafe(32)
    code = new_code() if account.phone_number else None
    row = AccessInvitation(
        id=new_id(), access_id=access.id, account_id=account.id, unit_id=access.unit_id,
        token_hash=hasher().hash(token, TOKEN_PURPOSE), attempts=0,
        expires_at=now + timedelta(hours=settings().invitation_hours),
        created_at=now, created_by=who.display, sent_at=now,
    )
    if code is not None:
        row.sms_code_hash = hasher().hash(code, _code_purpose(row.id))
    invites_repo.add(row)
    password = _stage_password(access, account, who)
    lang = language if language in LANGUAGES else ui_language(account.locale)
    messages = [outbox.enqueue_email(
        account.email, "invitation", lang if lang in LANGUAGES else "en",
        {"name": account.name, "unit_name": unit_name, "link": _link(token),
         "sms": code is not None, "expires_at": row.expires_at, "password": password},
        discard_after=row.expires_at, commit=False,
    )]
    if code is not None and account.phone_number:
        messages.append(enqueue_sms(
            account.phone_number, _sms_text(code, unit_name, lang),
            discard_after=row.expires_at, commit=False,
        ))
    access.details_sent_at = now
    audit.record(
        who, "invitation.sent", account.id,
        {"unit_id": access.unit_id, "invitation": row.id, "sms": code is not None,
         "replaced": replaced},
        unit_id=access.unit_id,
    )
    emit(unit_id=access.unit_id, event_type="invitation.sent", data={
        "invitation_id": row.id, "access_id": access.id, "account_id": account.id,
        "unit_id": access.unit_id, "sms_required": code is not None})
    return row, messages


def _stage_password(access: Access, account: Account, who: audit.Actor) -> str | None:
    """A generated password for the invitation or the access details when the unit
    allows passwords (:mod:`idp.factors.passwords`) and the person has not chosen
    their own; None otherwise. It goes only into the person's sealed outbox mail."""
    from idp.factors import passwords

    if not access.platform_access or not units.get(access.unit_id).passwords_allowed:
        return None
    status = passwords.generated_status(account.id)
    if status is None:
        return None
    return passwords.stage_generated(account, status, who, access.unit_id)


def stage_details(access: Access, who: audit.Actor) -> list[str] | None:
    """Stage the access details of an ``active`` access with platform access in a
    unit that allows passwords: a new generated password mailed to the person
    (status ``initial``, or ``reset_by_staff`` when it was that); None when nothing
    is due (no such access, or the person chose their own password). The caller
    authorised ``users.manage`` in the access's unit; sets ``details_sent_at``.
    :class:`SendLimit` (nothing staged) once the unit's hourly share is spent."""
    account = accounts.get(access.account_id)
    if (
        account is None or not access.platform_access
        or access.status != AccessStatus.ACTIVE or not account.can_sign_in
        or account.email is None  # no mailbox to send the details to
    ):
        return None
    unit = units.get(access.unit_id)
    if not unit.passwords_allowed:
        return None
    from idp.factors import passwords

    if passwords.generated_status(account.id) is None:
        return None
    spend_send_budget(access.unit_id)
    password = _stage_password(access, account, who)
    if password is None:  # pragma: no cover - checked above
        return None
    access.details_sent_at = utcnow()
    return [passwords.stage_mail(account, password, unit.name, "details")]


def _sms_text(code: str, unit_name: str, lang: str) -> str:
    if lang == "de":
        return f"Ihr Unitgate-Registrierungscode für {unit_name[:60]}: {code}"
    return f"Your Unitgate registration code for {unit_name[:60]}: {code}"


def deliver(message_ids: list[str]) -> None:
    """Hand committed outbox messages to the courier now (the retry loop would
    otherwise send them on its next round)."""
    if has_app_context():
        for message_id in message_ids:
            outbox.deliver_soon(message_id)


def _checked(data: NewContact, unit: Any) -> tuple[str, list[str], str | None, list[str] | None]:
    try:
        email = accounts.normalise_email(data.email)
    except accounts.InvalidEmail:
        raise ContactRefused("invalid_email", "Enter a valid e-mail address.", "email") from None
    try:  # no unit creates accounts in a domain another company verified
        ownership.check_new_address(unit.id, email)
    except ownership.AddressRefused as exc:
        raise ContactRefused(
            exc.reason, "This address lies in a domain another company verified.", "email"
        ) from None
    try:
        roles = units.validate_roles(unit, data.roles)
    except units.UnitError as exc:
        raise ContactRefused(exc.code, str(exc), "roles") from None
    mobile = normalise_mobile(data.mobile)
    notifications = None
    if data.notifications is not None:
        notifications = sorted({n.strip() for n in data.notifications if n.strip()})
        if len(notifications) > MAX_NOTIFICATIONS:
            raise ContactRefused("invalid_notifications", "Too many notifications.",
                                 "notifications")
    if data.language not in LANGUAGES:
        raise ContactRefused("invalid_language", "The language is en or de.", "language")
    for name, value in (("given_name", data.given_name), ("family_name", data.family_name)):
        if not value.strip():
            raise ContactRefused("required", f"The {name} is required.", name)
        if _has_control(value) or len(value.strip()) > 200:
            raise ContactRefused("invalid_value", f"The {name} is not a usable name.", name)
    if notifications and any(_has_control(n) or len(n) > 100 for n in notifications):
        raise ContactRefused("invalid_notifications", "An event name is not usable.",
                             "notifications")
    return email, roles, mobile, notifications


def add_contact(unit_id: str, data: NewContact, actor: Actor) -> ContactCreated:
    """Add a new person to the unit (see the module docstring), in one transaction.
    :class:`ContactRefused` for input a rule refuses, :class:`PersonExists` when the
    address has an account (nothing is written then, but the refusal is audited),
    :class:`idp.rights.NotPermitted` without ``users.manage`` in the unit or for
    roles granting a permission the actor does not hold there."""
    require(actor, "users.manage", unit_id)
    unit = units.get(unit_id)
    email, roles, mobile, notifications = _checked(data, unit)
    require_grant(actor, unit_id, roles)  # nobody hands out more than they hold
    who = audit_actor(actor)
    if accounts.by_email(email) is not None:
        _refused_existing(who, unit_id)
        # the answer tells that the address has an account: it costs a send from the
        # unit's hourly budget, so that guessing addresses is no faster than inviting
        spend_send_budget(unit_id)
        raise PersonExists(email)
    if data.platform_access or data.send_welcome:
        spend_send_budget(unit_id)
    try:
        with unit_of_work.atomic():
            account, access, invitation, messages = stage_new_contact(
                unit, data, email, roles, mobile, notifications, who, invite=True,
            )
    except unit_of_work.Conflict:
        raise PersonExists(email) from None  # a concurrent creation took the address
    deliver(messages)
    return ContactCreated(account, access,
                          _describe(invitation) if invitation is not None else None)


def stage_new_contact(
    unit: Any, data: NewContact, email: str, roles: list[str], mobile: str | None,
    notifications: list[str] | None, who: audit.Actor, *, invite: bool,
) -> tuple[Account, Access, AccessInvitation | None, list[str]]:
    """Stage (in the caller's transaction) a new person's account and access to
    ``unit``, with the invitation (platform access) or the welcome mail
    (``send_welcome``) when ``invite``; (account, access, invitation, outbox message
    ids). The caller checked the input (:func:`_checked` or the CSV import), the
    address being new, and spent the send budget (:func:`spend_send_budget`)
    before asking for an invitation. Without ``invite`` an access with platform
    access stays ``invited`` with no ``details_sent_at`` (``resend`` sends them)."""
    account = accounts.stage_contact(
        email, data.given_name.strip(), data.family_name.strip(), mobile,
        data.language, who, unit.id,
    )
    status = AccessStatus.INVITED if data.platform_access else AccessStatus.ACTIVE
    access = accesses.create(account.id, unit.id, roles, who, status=status)
    access.platform_access = data.platform_access
    access.notifications = notifications
    messages: list[str] = []
    invitation = None
    if invite and (data.platform_access or data.send_welcome):
        invites_repo.flush()  # the access gets its id before its invitation
    if invite and data.platform_access:
        invitation, messages = _stage_invitation(access, account, unit.name, who, data.language)
    elif invite and data.send_welcome:
        messages.append(outbox.enqueue_email(
            email, "welcome", data.language,
            {"name": account.name, "unit_name": unit.name}, commit=False,
        ))
        access.details_sent_at = utcnow()
    return account, access, invitation, messages


def _refused_existing(who: audit.Actor, unit_id: str) -> None:
    """Audit an attempt to add an existing address as a new person (a series of
    them is an administrator probing which addresses have accounts)."""
    with unit_of_work.atomic():
        audit.record(who, "contact.person_exists", None, {"unit_id": unit_id}, unit_id=unit_id)


def stage_resend(access: Access, who: audit.Actor, spend: bool = True) -> list[str] | None:
    """Stage (in the caller's transaction) a new invitation for ``access``, ending
    the previous link and code, when it is ``invited`` with platform access and its
    account may sign in; the outbox message ids, or None when nothing is due. The
    caller has authorised ``users.manage`` in the access's unit. Sets the access's
    ``details_sent_at``. :class:`SendLimit` (nothing staged) once the unit's hourly
    share of invitations is spent; ``spend`` false: the caller spent it already
    (the CSV import spends before its batch's transaction)."""
    account = accounts.get(access.account_id)
    if (
        account is None or not access.platform_access
        or access.status != AccessStatus.INVITED or not account.can_sign_in
        or account.email is None  # no mailbox to send the invitation to
    ):
        return None
    if spend:
        spend_send_budget(access.unit_id)
    unit = units.get(access.unit_id)
    _, messages = _stage_invitation(access, account, unit.name, who, account.locale or "en")
    return messages


def resend(account_id: str, unit_id: str, actor: Actor) -> bool:
    """Send the access details again: a new invitation for an ``invited`` access with
    platform access, ending the previous link and code. False (nothing sent) when
    the account has no such access (an active one signs in with e-mail codes; one
    without platform access has nothing to register). Sets the access's
    ``details_sent_at``. :class:`idp.rights.NotPermitted` without ``users.manage``."""
    require(actor, "users.manage", unit_id)
    access = accesses.find(account_id, unit_id)
    if access is None:
        return False
    with unit_of_work.atomic():
        messages = stage_resend(access, audit_actor(actor))
    if messages is None:
        return False
    deliver(messages)
    return True


def revoke(account_id: str, unit_id: str, actor: Actor) -> bool:
    """End the access's live invitation (its link and code stop working); audited.
    False when none was live."""
    require(actor, "users.manage", unit_id)
    access = accesses.find(account_id, unit_id)
    if access is None:
        return False
    with unit_of_work.atomic():
        ended = invites_repo.end_live(access.id, utcnow(), "revoked")
        if ended:
            audit.record(audit_actor(actor), "invitation.revoked", account_id,
                         {"unit_id": unit_id}, unit_id=unit_id)
            latest = invites_repo.latest_for_access(access.id)
            emit(unit_id=unit_id, event_type="invitation.revoked", data={
                "invitation_id": latest.id if latest is not None else "",
                "access_id": access.id, "account_id": account_id, "unit_id": unit_id})
    return bool(ended)


def status(access_id: str) -> InvitationState | None:
    """The newest invitation of the access, described; None when it never had one."""
    row = invites_repo.latest_for_access(access_id)
    return None if row is None else _describe(row)


def access_in_unit(access_id: str, unit_id: str) -> Access | None:
    """The access ``access_id`` if it belongs to ``unit_id`` (else None)."""
    return invites_repo.access_in_unit(access_id, unit_id)


def listing(
    unit_ids: set[str] | None, only_pending: bool, limit: int = 200
) -> list[dict[str, Any]]:
    """The newest invitations of ``unit_ids`` (None: all) for the CLI."""
    now = utcnow()
    out = []
    for row, email in invites_repo.search(
        unit_ids, "pending" if only_pending else None, now, limit
    ):
        state = _describe(row, now)
        out.append({
            "id": row.id, "account_id": row.account_id, "unit_id": row.unit_id,
            "access_id": row.access_id, "email": email, "status": state.status,
            "reason": state.reason, "sms_required": state.sms_required,
            "sent_at": _iso(state.sent_at), "expires_at": _iso(state.expires_at),
        })
    return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# -- the invitee's side -----------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """What the invitation page shows for a link."""

    status: str  # pending, expired, used, revoked, unknown
    invitation_id: str | None = None
    unit_name: str = ""
    email: str = ""
    sms_required: bool = False
    tries_left: int = 0


def open_link(token: str) -> Opened:
    """The state of the invitation behind ``token`` (``unknown`` when there is none);
    reads only, so a mail scanner opening the link changes nothing."""
    if not token or len(token) > 100:
        return Opened("unknown")
    row = invites_repo.by_token_hash(hasher().hash(token, TOKEN_PURPOSE))
    if row is None:
        return Opened("unknown")
    state = _describe(row)
    unit = invites_repo.unit(row.unit_id)
    account = invites_repo.account(row.account_id)
    return Opened(
        state.status, row.id, unit.name if unit is not None else "",
        (account.email or "") if account is not None else "", state.sms_required,
        max(0, settings().invitation_sms_tries - (row.attempts or 0)),
    )


@dataclass(frozen=True)
class Accepted:
    """The outcome of :func:`accept`: ``ok`` with the account, else ``status`` says
    why not (``wrong_code`` with ``tries_left``; ``revoked`` when the last try burnt
    it; ``expired``, ``used``, ``unknown``, ``blocked``)."""

    status: str
    account: Account | None = None
    unit_id: str | None = None
    tries_left: int = 0


def accept(token: str, code: str | None) -> Accepted:
    """Redeem the link ``token`` (and the SMS ``code`` when the invitation has one),
    in one transaction: the invitation is used, the access becomes ``active``
    (audited ``access.activated``), the address counts as verified, audited
    ``invitation.accepted``. A wrong code counts one try (committed on its own); the
    last allowed wrong try burns the invitation."""
    opened = open_link(token)
    if opened.status != PENDING or opened.invitation_id is None:
        return Accepted(opened.status)
    row = invites_repo.get(opened.invitation_id)
    account = invites_repo.account(row.account_id) if row is not None else None
    if row is None or account is None:
        return Accepted("unknown")
    if not account.can_sign_in:
        return Accepted("blocked")
    if row.sms_code_hash is not None and not hasher().verify(
        normalise_code(code or ""), _code_purpose(row.id), row.sms_code_hash
    ):
        limit = settings().invitation_sms_tries
        with unit_of_work.atomic():
            count = invites_repo.count_attempt(row.id, limit, utcnow())
            if count is not None and count >= limit:
                audit.record(audit.account_actor(account.id), "invitation.burnt", account.id,
                             {"unit_id": row.unit_id, "invitation": row.id},
                             unit_id=row.unit_id)
        if count is None:
            return Accepted(open_link(token).status)
        if count >= limit:
            return Accepted(REVOKED)
        return Accepted("wrong_code", tries_left=limit - count)
    who = audit.account_actor(account.id)
    unit_id = row.unit_id
    try:
        with unit_of_work.atomic():
            if not invites_repo.mark_used(row.id, utcnow()):
                raise _Gone
            if not accesses.activate(account.id, unit_id, who):
                # suspended, or platform access taken away since it was sent: the
                # link must not undo that (nothing is written)
                raise _NotInvited
            # the link reached the mailbox: the address is proven (the lifecycle's rule)
            accounts.stage_profile(account, {"email_verified": True}, "employee")
            audit.record(who, "invitation.accepted", account.id,
                         {"unit_id": unit_id, "invitation": row.id,
                          "sms": row.sms_code_hash is not None}, unit_id=unit_id)
            emit(unit_id=unit_id, event_type="invitation.accepted", data={
                "invitation_id": row.id, "access_id": row.access_id,
                "account_id": account.id, "unit_id": unit_id})
    except _Gone:
        return Accepted(open_link(token).status)
    except _NotInvited:
        return Accepted(REVOKED)
    except unit_of_work.Conflict:
        return Accepted(USED)
    return Accepted("ok", accounts.get(account.id), unit_id)


class _Gone(Exception):
    pass


class _NotInvited(Exception):
    pass
