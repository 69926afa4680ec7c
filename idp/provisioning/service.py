"""Provisioning: HR systems create, update, deactivate and delete a unit's accounts.

This is the domain side of SCIM (``scim/`` converts to and from it) and knows
nothing of SCIM. Guarantees:

* **Ownership** (:mod:`idp.provisioning.ownership`). A unit creates or adopts an account, or
  gives one a new address, only for an address in a domain its tree verified and
  that is in force; an existing account only when nothing of another unit reaches it
  (else :class:`Conflict`). An address in another company's domain is refused
  (:class:`InvalidValue`). Any other address gives a *pending* record: its account is
  a placeholder with an undeliverable address that nobody can sign in to, the HR
  system sees and manages the record as usual, and it meets its holder's account only
  when the holder proves the mailbox and agrees to join (:mod:`idp.accounts.invitations`).
  So no unit can read, rename, adopt or delete an account it does not own.
* **Stable ids.** A record's SCIM ``id`` is its own (``scim_id``); it does not change
  when a pending record is bound to its holder's account.
* **Field ownership** (:mod:`idp.accounts.field_owners`): a source writes only fields it may
  and becomes their owner, so the employee cannot overwrite what HR owns.
* **Deactivation** (``active`` false) blocks sign-in (``Account.status``), ends every
  session and revokes every grant (refresh tokens stop, introspection says inactive)
  in the same transaction. Reactivation restores sign-in.
* **Deletion** deprovisions an account the unit owns (its address is in the unit's
  domain, or it is pending): the profile is anonymised at once, memberships, groups
  and consents are removed; the account row stays as a tombstone so audit events and
  sign-in history remain attributable (retention rule in ``docs/scim.md``). An account
  whose holder joined with an address outside the unit's domains is only *detached*:
  the unit's record, membership, groups and the fields the unit set are removed,
  the person's account stays theirs.
* **No lost updates.** Every change is computed from a fresh read and written only if
  the account's ``version`` is unchanged, else retried; ``if_match`` turns a stale
  version into :class:`PreconditionFailed` instead.
* Every change is audited with the actor (``Actor.scim(<token>)``) and the unit.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from idp import audit
from idp.accounts import accesses
from idp.accounts import lifecycle as accounts
from idp.accounts.field_owners import (
    DELETED,
    EXTRA_LENGTH,
    EXTRA_PREFIX,
    FACT_FIELDS,
    FIELD_LENGTHS,
    PERSONAL_FIELDS,
    attempts,
    checked,
    column_value,
    employee_editable,
    limit,
    may_write,
    owners,
)
from idp.accounts.lifecycle import employee_update
from idp.provisioning import ownership
from idp.provisioning.errors import (
    Busy,
    Conflict,
    FieldOwned,
    InvalidValue,
    NotFound,
    PreconditionFailed,
    ProvisioningError,
)
from idp.store import grants_repo, scim_repo
from idp.store.models import Access, AccessStatus, Account, ScimUser, new_id
from idp.store.predicates import Predicate
from idp.webhooks import emit

ACTIVE = accounts.Status.ACTIVE
DEACTIVATED = accounts.Status.DEACTIVATED
NEW_MEMBER_ROLE = "employee"  # like every other way of joining a unit

# Directory attributes kept with the provisioning unit's record.
RECORD_FIELDS: dict[str, int] = {
    "user_name": 320,
    "external_id": 200,
    "display_name": 200,
    "title": 200,
    "user_type": 64,
    "manager_id": 200,
}


@dataclass(frozen=True)
class Actor:
    """Who makes a change: ``source`` decides ownership, ``name`` is the audit actor
    (e.g. :meth:`idp.audit.Actor.scim`)."""

    source: str
    name: audit.Actor | str


def _announce(unit_id: str, account_id: str, actor: Actor, operation: str) -> None:
    """Stage the ``scim.changed`` webhook event of a SCIM client's change (in its
    transaction); LDAP syncs announce their run instead (``ldap.synced``)."""
    if actor.source == "scim":
        emit(unit_id=unit_id, event_type="scim.changed",
             data={"account_id": account_id, "unit_id": unit_id, "operation": operation})


def scim_actor(token_id: str, token_name: str) -> Actor:
    """A unit's SCIM client: it owns what SCIM writes and is audited as its token."""
    return Actor("scim", audit.Actor.scim(token_id, token_name))


@dataclass
class DirectoryUser:
    """A person as a unit's HR system sees them. ``None`` means unset.

    ``id`` is the record's SCIM id, ``account_id`` the account it is stored on (a
    placeholder while ``pending``: see :mod:`idp.provisioning.ownership`). ``joined``: the holder
    of the address joined the record with their own account (:mod:`idp.accounts.invitations`),
    whose address and status stay theirs."""

    user_name: str
    id: str = ""
    account_id: str = ""
    pending: bool = False
    joined: bool = False
    external_id: str | None = None
    active: bool = True
    email: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    display_name: str | None = None
    title: str | None = None
    user_type: str | None = None
    phone_number: str | None = None
    locale: str | None = None
    personnel_number: str | None = None
    cost_centre: str | None = None
    department: str | None = None
    manager_id: str | None = None
    extras: dict[str, str | None] = field(default_factory=dict)
    groups: list[tuple[str, str]] = field(default_factory=list)  # read-only (id, name)
    version: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


__all__ = [
    "ACTIVE",
    "DEACTIVATED",
    "DELETED",
    "Actor",
    "Busy",
    "Conflict",
    "DirectoryUser",
    "FieldOwned",
    "InvalidValue",
    "NotFound",
    "PreconditionFailed",
    "ProvisioningError",
    "create_user",
    "delete_user",
    "employee_editable",
    "employee_update",
    "extra_names",
    "find_users",
    "get_user",
    "may_write",
    "owners",
    "update_user",
]


class _Retry(Exception):
    pass


# -- reading -------------------------------------------------------------------------


def get_user(unit_id: str, user_id: str) -> DirectoryUser:
    """The unit's view of one of its records (by SCIM id); :class:`NotFound` for any
    id the unit does not provision (another unit's id, an account id included)."""
    row = scim_repo.user_row(unit_id, user_id)
    if row is None:
        raise NotFound("user not found")
    account_id = row[0].id
    groups = scim_repo.groups_of_accounts(unit_id, [account_id])[account_id]
    return _to_user(
        row[0], row[1], row[2], [(g.id, g.display_name) for g in groups], extra_names(unit_id)
    )


def find_users(
    unit_id: str,
    where: Predicate,
    sort_field: str | None = None,
    descending: bool = False,
    offset: int = 0,
    limit: int = 100,
    with_groups: bool = True,
) -> tuple[int, list[DirectoryUser]]:
    """Total and one page of the unit's users matching ``where``, in a stable order."""
    total, rows = scim_repo.search_users(unit_id, where, sort_field, descending, offset, limit)
    groups = (
        scim_repo.groups_of_accounts(unit_id, [a.id for a, _, _ in rows]) if with_groups else {}
    )
    names = extra_names(unit_id)
    return total, [
        _to_user(a, r, s, [(g.id, g.display_name) for g in groups.get(a.id, [])], names)
        for a, r, s in rows
    ]


_FIELD_NAMES: dict[str, tuple[float, list[str]]] = {}
FIELD_NAMES_SECONDS = 5.0


def extra_names(unit_id: str) -> list[str]:
    """Names of the unit's own profile fields (``UnitProfileField``).

    Read at most every :data:`FIELD_NAMES_SECONDS` per process (they change rarely and
    every provisioning request needs them): a field a unit adds reaches SCIM within
    that time.
    """
    now = time.monotonic()
    cached = _FIELD_NAMES.get(unit_id)
    if cached is None or now - cached[0] > FIELD_NAMES_SECONDS:
        names = [f.name for f in scim_repo.profile_fields(unit_id)]
        if len(_FIELD_NAMES) > 10_000:
            _FIELD_NAMES.clear()
        _FIELD_NAMES[unit_id] = cached = (now, names)
    return list(cached[1])


def _to_user(
    account: Account,
    record: ScimUser,
    access: Access | None,
    groups: list[tuple[str, str]],
    names: list[str],
) -> DirectoryUser:
    """The unit's view of a record: personal fields from the account, employer facts
    from the account's access to the unit."""
    extra = (access.extra or {}) if access is not None else {}
    return DirectoryUser(
        id=record.scim_id,
        account_id=account.id,
        pending=record.pending_email is not None,
        joined=record.joined_at is not None,
        user_name=record.user_name,
        external_id=record.external_id,
        active=(
            access is None or access.status != AccessStatus.SUSPENDED
            if record.joined_at is not None
            else account.status == ACTIVE
        ),
        email=record.pending_email or account.email,
        given_name=account.given_name or None,
        family_name=account.family_name or None,
        display_name=record.display_name,
        title=record.title,
        user_type=record.user_type,
        phone_number=account.phone_number,
        locale=account.locale,
        personnel_number=access.personnel_number if access is not None else None,
        cost_centre=access.cost_centre if access is not None else None,
        department=access.department if access is not None else None,
        manager_id=record.manager_id,
        extras={n: _text_or_none(extra.get(n)) for n in names if extra.get(n) is not None},
        groups=groups,
        version=account.version,
        created_at=record.created_at,
        updated_at=account.updated_at,
    )


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


# -- writing -------------------------------------------------------------------------


def create_user(unit_id: str, user: DirectoryUser, actor: Actor) -> DirectoryUser:
    """Provision a new user in the unit (or adopt an unclaimed account of the unit
    with that address). :class:`Conflict` when the userName exists in the unit or the
    address belongs to someone the unit may not adopt."""
    user = _validated(user, extra_names(unit_id))
    try:
        with scim_repo.atomic():
            created = _insert_user(unit_id, user, actor)
    except scim_repo.DuplicateRow:
        raise Conflict("a user with this userName or e-mail address already exists") from None
    return created


def _insert_user(unit_id: str, user: DirectoryUser, actor: Actor) -> DirectoryUser:
    if user.email is None:
        return _insert_user_without_email(unit_id, user, actor)
    standing = _standing(unit_id, user.email)
    if scim_repo.address_taken(unit_id, user.email):
        raise Conflict("a user with this e-mail address already exists")
    pending_email = None
    account = None
    if standing is ownership.Standing.OWN:
        account = scim_repo.account_by_email(user.email)
        if account is not None and not ownership.bindable(unit_id, account):
            raise Conflict("a user with this e-mail address already exists")
    else:
        pending_email = user.email
    adopted = account is not None
    if account is None:
        account_id = new_id()
        email = user.email if pending_email is None else placeholder_email(account_id)
        account = accounts.new_account(
            email, email_verified=False, account_id=account_id, version=0
        )
    record, access = _stage_record_and_access(
        account, unit_id, user, actor, pending_email=pending_email, adopted=adopted,
        with_email=pending_email is None,
    )
    details: dict[str, Any] = {
        "unit_id": unit_id,
        "adopted": adopted,
        "active": user.active,
        "pending": pending_email is not None,
    }
    audit.record(actor.name, "account.provisioned", account.id, details)
    _announce(unit_id, account.id, actor, "created")
    if adopted and not user.active:
        _cut_access(account.id, actor, unit_id)
    scim_repo.flush()
    return _to_user(
        account, record, access, [], extra_names(unit_id)
    )


def _stage_record_and_access(
    account: Any, unit_id: str, user: DirectoryUser, actor: Actor, *,
    pending_email: str | None, adopted: bool, with_email: bool,
) -> tuple[ScimUser, Any]:
    """Stage a provisioned person's profile (the address only ``with_email``), status
    and version, their SCIM record, their access to the unit (an adopted member's own
    one, else a new one) and its employer facts: what every SCIM creation writes."""
    values: dict[str, Any] = {
        name: getattr(user, name)
        for name in PERSONAL_FIELDS
        if getattr(user, name) is not None and (with_email or name != "email")
    }
    accounts.stage_profile(account, values, actor.source, bump_version=False)
    account.status = accounts.provisioned_status(account, user.active)
    account.version = (account.version or 0) + 1
    record = ScimUser(
        account_id=account.id,
        scim_id=account.id,
        pending_email=pending_email,
        unit_id=unit_id,
        user_name=user.user_name,
        user_name_key=user.user_name.lower(),
        external_id=user.external_id,
        display_name=user.display_name,
        title=user.title,
        user_type=user.user_type,
        manager_id=user.manager_id,
    )
    scim_repo.add(record)
    access = accesses.find(account.id, unit_id) if adopted else None
    if access is None:
        access = accesses.create(account.id, unit_id, [NEW_MEMBER_ROLE], actor.name, event=None)
    facts: dict[str, str | None] = {n: getattr(user, n) for n in FACT_FIELDS}
    facts.update({EXTRA_PREFIX + n: v for n, v in user.extras.items()})
    accesses.set_facts(access, {k: v for k, v in facts.items() if v is not None}, actor.source)
    return record, access


def _insert_user_without_email(unit_id: str, user: DirectoryUser, actor: Actor) -> DirectoryUser:
    """Provision a person without a mailbox (RFC 7643 requires only ``userName``): a new
    account of the unit with no address, its access and record, like any other. Nobody
    can sign in to it by e-mail code or password until an address is set
    (:func:`_new_address`); an upstream identity linked to it signs in by its subject.
    Never adopts an existing account (there is no address to match it by)."""
    if scim_repo.user_name_taken(unit_id, user.user_name.lower()):
        raise Conflict("a user with this userName already exists")
    account = accounts.new_account(None, email_verified=False, version=0)
    record, access = _stage_record_and_access(
        account, unit_id, user, actor, pending_email=None, adopted=False, with_email=False,
    )
    audit.record(actor.name, "account.provisioned", account.id, {
        "unit_id": unit_id, "adopted": False, "active": user.active, "pending": False,
        "without_email": True,
    })
    _announce(unit_id, account.id, actor, "created")
    scim_repo.flush()
    return _to_user(account, record, access, [], extra_names(unit_id))


PLACEHOLDER_DOMAIN = "pending.invalid"
JOINED_ADDRESS_MESSAGE = (
    "the person joined with their own address, which only they can change"
)


def placeholder_email(account_id: str) -> str:
    """The undeliverable address of a pending record's placeholder account (RFC 2606
    ``.invalid``): nobody can receive a code for it, so nobody can sign in to it."""
    return f"pending-{account_id}@{PLACEHOLDER_DOMAIN}"


def _standing(unit_id: str, email: str) -> ownership.Standing:
    """The address's standing for the unit; an address in another company's verified
    domain is :class:`InvalidValue`."""
    try:
        return ownership.check_new_address(unit_id, email)
    except ownership.AddressRefused as exc:
        raise InvalidValue(str(exc)) from None


def update_user(
    unit_id: str,
    user_id: str,
    change: Callable[[DirectoryUser], DirectoryUser],
    actor: Actor,
    if_match: int | None = None,
    replace: bool = False,
) -> DirectoryUser:
    """Apply ``change`` (current view -> desired view) without losing concurrent updates.

    ``replace`` (SCIM PUT): an unset field in the desired view clears it only when
    ``actor`` owns it, so an HR system that does not know a field leaves the
    employee's value alone. Deactivation and reactivation take effect here.
    """
    names = extra_names(unit_id)
    for _attempt in attempts():
        current = get_user(unit_id, user_id)
        if if_match is not None and current.version != if_match:
            raise PreconditionFailed("the user was changed since it was read")
        desired = _validated(change(copy.deepcopy(current)), names)
        try:
            with scim_repo.atomic():
                if not _write_user(unit_id, current, desired, actor, replace, names):
                    raise _Retry()
        except _Retry:
            continue
        except scim_repo.DuplicateRow:
            raise Conflict("a user with this userName or e-mail address already exists") from None
        return get_user(unit_id, user_id)
    raise Busy("the user is being changed concurrently; retry")


def _write_user(
    unit_id: str,
    cur: DirectoryUser,
    des: DirectoryUser,
    actor: Actor,
    replace: bool,
    names: list[str],
) -> bool:
    account = scim_repo.account(cur.account_id)
    assert account is not None
    access = scim_repo.access(cur.account_id, unit_id)
    owned, facts_owned = owners(account), owners(access)
    values: dict[str, Any] = {}
    facts: dict[str, str | None] = {}
    record: dict[str, Any] = {}
    changed: list[str] = []
    profile: dict[str, Any] = {}
    for name in FIELD_LENGTHS:  # personal fields and employer facts
        new, old = getattr(des, name), getattr(cur, name)
        owner = (facts_owned if name in FACT_FIELDS else owned).get(name)
        if new == old or (replace and new is None and owner != actor.source):
            continue
        if name in FACT_FIELDS:
            facts[name] = new
            changed.append(name)
            continue
        if name == "email":
            if new is None:
                raise InvalidValue("the e-mail address cannot be removed")
            if _new_address(unit_id, cur, new, values, record):
                changed.append(name)
            continue
        profile[name] = new
    for name in names:
        new, old = des.extras.get(name), cur.extras.get(name)
        key = EXTRA_PREFIX + name
        if new == old or (replace and new is None and facts_owned.get(key) != actor.source):
            continue
        facts[key] = new
        changed.append(key)
    # the lifecycle's one ownership rule (personal fields on the account, facts on the
    # unit's access): FieldOwned when a higher-ranked writer owns one
    values.update(accounts.profile_changes(account, profile, actor.source).values)
    changed.extend(profile)
    if facts:
        if access is None:
            raise Conflict("the user has no access to this unit; reactivate it first")
        accesses.set_facts(access, facts, actor.source)
    for name in RECORD_FIELDS:
        new, old = getattr(des, name), getattr(cur, name)
        if new != old:
            if name == "user_name":
                if scim_repo.user_name_taken(
                    unit_id, new.lower(), except_account=cur.account_id
                ):
                    raise Conflict("a user with this userName already exists")
                record["user_name_key"] = new.lower()
            record[name] = new
            changed.append(name)
    status_change = None
    if des.active != cur.active and cur.joined:
        status_change = ACTIVE if des.active else DEACTIVATED
    elif des.active != cur.active:
        if des.active and account.status == DEACTIVATED:
            values["status"] = status_change = ACTIVE
        elif not des.active and account.status == ACTIVE:
            values["status"] = status_change = DEACTIVATED
    if not values and not record and not facts and status_change is None:
        return True
    if not scim_repo.bump_account(cur.account_id, cur.version, values):
        return False
    if cur.joined and status_change is not None:
        _suspension(unit_id, cur, status_change, actor)
    scim_repo.update_directory_record(unit_id, cur.account_id, record)
    if changed:
        audit.record(
            actor.name, "account.updated", cur.account_id,
            {"unit_id": unit_id, "fields": changed},
        )
    _announce(unit_id, cur.account_id, actor, {
        None: "updated", ACTIVE: "reactivated", DEACTIVATED: "deactivated"}[status_change])
    if cur.joined:  # the unit's access changed (_suspension), not the person's status
        return True
    if status_change == DEACTIVATED:
        _cut_access(cur.account_id, actor, unit_id)
    elif status_change == ACTIVE:
        audit.record(actor.name, "account.reactivated", cur.account_id, {"unit_id": unit_id})
    return True


def _suspension(unit_id: str, cur: DirectoryUser, change: str, actor: Actor) -> None:
    """Stage HR's ``active`` change of a joined record, within the unit only:
    deactivation suspends the unit's access (``idp.accounts.accesses``; its roles and facts
    stay on it) and revokes the grants issued for the unit; reactivation makes the
    access active again. The person's account, sessions and other units are
    untouched."""
    if change == DEACTIVATED:
        accesses.suspend(cur.account_id, unit_id, actor.name)
        return
    if accesses.find(cur.account_id, unit_id) is None:  # removed meanwhile: give it back
        accesses.create(cur.account_id, unit_id, [NEW_MEMBER_ROLE], actor.name)
    else:
        accesses.reactivate(cur.account_id, unit_id, actor.name)


def _new_address(
    unit_id: str,
    cur: DirectoryUser,
    new: str,
    values: dict[str, Any],
    record: dict[str, Any],
) -> bool:
    """Stage a record's new address by the ownership rules; True when it changes.

    A pending record takes any address that is not in another company's domain, and
    is bound at once to a free address in the unit's own domain. A bound record's
    account is renamed only to a free address in the unit's own domain. A joined
    record's address is the person's own and never changes through the unit.

    An account provisioned without an address is a bound record: it gets an address
    only in the unit's own domain, unverified, and from then on its holder signs in
    with e-mail codes like anyone. An address another account holds is a
    :class:`Conflict` (SCIM ``uniqueness``): accounts are never merged.
    """
    if cur.joined:
        raise InvalidValue(JOINED_ADDRESS_MESSAGE)
    standing = _standing(unit_id, new)
    if scim_repo.address_taken(unit_id, new, except_account=cur.account_id):
        raise Conflict("a user with this e-mail address already exists")
    if standing is ownership.Standing.OWN:
        holder = scim_repo.account_by_email(new)
        if holder is not None and holder.id != cur.account_id:
            raise Conflict("a user with this e-mail address already exists")
        values["email"] = new
        values["email_verified"] = False
        record["pending_email"] = None
        return True
    if not cur.pending:
        raise InvalidValue(ownership.NOT_OWN_MESSAGE)
    record["pending_email"] = new
    return True


def _cut_access(account_id: str, actor: Actor, unit_id: str) -> None:
    accounts.stage_cut_access(account_id, actor.name, "account.deactivated", {"unit_id": unit_id})


def delete_user(unit_id: str, user_id: str, actor: Actor, if_match: int | None = None) -> None:
    """Deprovision an account the unit owns: anonymise the profile, remove
    memberships, groups, consents, the directory record; end sessions and revoke
    grants. Audit events and sign-in history are kept (they hold no profile values).
    A record whose holder joined it with their own account is detached instead
    (:func:`_detach`): the person keeps their account."""
    for _attempt in attempts():
        current = get_user(unit_id, user_id)
        if if_match is not None and current.version != if_match:
            raise PreconditionFailed("the user was changed since it was read")
        account_id = current.account_id
        member_of = [gid for gid, _name in current.groups]
        try:
            with scim_repo.atomic():
                _announce(unit_id, account_id, actor, "deleted")
                if scim_repo.joined(account_id):
                    if not _detach(unit_id, current, actor):
                        raise _Retry()
                    return
                anonymous = accounts.anonymised_values(account_id)
                if not scim_repo.bump_account(account_id, current.version, anonymous):
                    raise _Retry()
                scim_repo.forget_account(account_id)
                accounts.stage_cut_access(
                    account_id, actor.name, "account.deprovisioned",
                    {
                        "unit_id": unit_id,
                        "groups_left": len(member_of),
                        "retention": "profile anonymised; audit events and sign-ins kept",
                    },
                )
        except _Retry:
            continue
        return
    raise Busy("the user is being changed concurrently; retry")


def _detach(unit_id: str, current: DirectoryUser, actor: Actor) -> bool:
    """Stage the end of a joined record: the unit's record, membership and groups
    go, so do the values the unit's provisioning owns; grants issued for the unit are
    revoked. The person's account, address and everything else stay. False when the
    account changed concurrently."""
    account = scim_repo.account(current.account_id)
    assert account is not None
    owned = owners(account)
    values: dict[str, Any] = {}
    for key, owner in list(owned.items()):  # the unit's facts go with its access
        if owner != actor.source:
            continue
        del owned[key]
        if key in PERSONAL_FIELDS and key != "email":
            values[key] = column_value(key, None)
    values["field_owners"] = owned
    if not scim_repo.bump_account(account.id, current.version, values):
        return False
    scim_repo.detach_account(account.id, unit_id)
    revoked = grants_repo.revoke_for_unit(account.id, unit_id)
    audit.record(
        actor.name,
        "account.detached",
        account.id,
        {"unit_id": unit_id, "fields_released": len(values) - 1, "grants_revoked": revoked},
    )
    return True


# -- validation ----------------------------------------------------------------------


def _validated(user: DirectoryUser, names: list[str]) -> DirectoryUser:
    """Trim, length-check and normalise a desired view; unknown extras are refused."""
    for name in list(FIELD_LENGTHS) + list(RECORD_FIELDS):
        size = RECORD_FIELDS.get(name) or limit(name)
        setattr(user, name, checked(name, getattr(user, name), size))
    if not user.user_name:
        raise InvalidValue("userName is required")
    if user.email is None and _is_email(user.user_name):
        user.email = user.user_name
    if user.email is not None:
        try:
            user.email = accounts.normalise_email(user.email)
        except accounts.InvalidEmail:
            raise InvalidValue("the e-mail address is not valid") from None
    unknown = set(user.extras) - set(names)
    if unknown:
        raise InvalidValue(f"unknown unit field: {sorted(unknown)[0]}")
    user.extras = {
        k: checked(EXTRA_PREFIX + k, v, EXTRA_LENGTH) for k, v in user.extras.items()
    }
    return user


def _is_email(text: str) -> bool:
    try:
        accounts.normalise_email(text)
    except accounts.InvalidEmail:
        return False
    return True
