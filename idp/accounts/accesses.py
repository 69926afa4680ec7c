"""Accesses: a person's access to a business unit, the access half of the one account
lifecycle (``idp.accounts.lifecycle`` holds the account half).

An :class:`~idp.store.models.Access` has its own status (:class:`AccessStatus`:
``invited``, ``active``, ``suspended``, ``removed``), separate from the account's
status: a unit suspending its access never blocks the person elsewhere, while a
blocked account holds nothing anywhere. Only an access that *grants* (active and not
past ``ends_at``, :func:`granting`) gives roles, permission groups, rights
(``idp.rights``), org claims and SAML attributes, and can be chosen as the unit of a
sign-in.

Every writer (wallet, SCIM, LDAP, federation, invitations, the CLI, the units
service) changes accesses through this module. The functions here *stage* their
change and its audit event in the caller's unit of work; the caller commits with
``idp.store.unit_of_work.atomic()`` (one transaction with the rest of its change).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from idp import audit
from idp.accounts import field_owners
from idp.provisioning.errors import FieldOwned, InvalidValue
from idp.store import accesses_repo, grants_repo, units_repo
from idp.store.models import Access, AccessStatus, new_id, utcnow
from idp.store.unit_of_work import Conflict, atomic
from idp.units import field_types
from idp.webhooks import emit

__all__ = [
    "Access",
    "AccessStatus",
    "Activity",
    "activity",
    "create",
    "find",
    "granting",
    "is_last_main_user",
    "lock_for_main_users",
    "of_account",
    "reactivate",
    "record_signin",
    "remove",
    "set_end",
    "set_facts",
    "set_roles",
    "set_settings",
    "stage_upstream_roles",
    "suspend",
    "would_drop_main_user",
]


def _announce(event_type: str, row: Access, actor: audit.Actor | str, **extra: Any) -> None:
    """Stage the webhook event of an access change (in the change's transaction)."""
    data: dict[str, Any] = {"access_id": row.id, "account_id": row.account_id,
                            "unit_id": row.unit_id, "source": audit.as_actor(actor).kind}
    emit(unit_id=row.unit_id, event_type=event_type, data={**data, **extra})


def granting(rows: Iterable[Access], now: datetime | None = None) -> list[Access]:
    """The accesses of ``rows`` that give something now (active, not ended)."""
    at = now or utcnow()
    return [row for row in rows if row.grants(at)]


def of_account(account_id: str) -> list[Access]:
    """Every access of the account, any status, units loaded."""
    return accesses_repo.of_account(account_id)


def find(account_id: str, unit_id: str) -> Access | None:
    """The account's access to the unit, any status."""
    return accesses_repo.get(account_id, unit_id)


def create(
    account_id: str,
    unit_id: str,
    roles: Iterable[str],
    actor: audit.Actor | str,
    status: AccessStatus = AccessStatus.ACTIVE,
    ends_at: datetime | None = None,
    event: str | None = "access.created",
) -> Access:
    """Stage a new access with ``roles`` (``invited`` for an invitation), recording
    ``actor`` as its creator, and its audit event (``event``; None when the caller
    records its own). The caller commits; a duplicate (account, unit) fails there."""
    who = audit.as_actor(actor)
    row = Access(
        id=new_id(),
        account_id=account_id,
        unit_id=unit_id,
        roles=list(roles),
        status=status.value,
        created_by_kind=who.kind,
        created_by_id=who.id,
        ends_at=ends_at,
    )
    accesses_repo.add(row)
    if event:
        audit.record(actor, event, account_id,
                     {"unit_id": unit_id, "status": status.value, "roles": sorted(row.roles)})
    _announce("access.created", row, actor, status=status.value, roles=sorted(row.roles),
              platform_access=row.platform_access is not False)
    return row


def join(
    account_id: str,
    unit_id: str,
    roles: Iterable[str],
    actor: audit.Actor | str,
    action: str,
    details: dict[str, Any],
    facts: dict[str, Any] | None = None,
) -> Access:
    """Create and commit an active access with ``roles`` and the employee's own
    ``facts`` (a wallet form's ``cost_centre``, ``personnel_number`` and unit fields
    under ``extra``), audited as ``action``. When a concurrent sign-in created the
    same access first, return that one instead (no duplicate, no error, no event)."""
    try:
        with atomic():
            row = create(account_id, unit_id, roles, actor, event=None)
            if facts:
                set_facts(row, wallet_facts(facts), field_owners.EMPLOYEE)
            audit.record(actor, action, account_id, details, unit_id)
        return row
    except Conflict:
        existing = accesses_repo.get(account_id, unit_id)
        if existing is None:
            raise
        return existing


def wallet_facts(profile: dict[str, Any]) -> dict[str, str | None]:
    """The employer facts of a wallet form's ``profile`` as fact changes (non-empty
    values only): ``cost_centre``, ``personnel_number``, ``extra.<unit field>``."""
    out: dict[str, str | None] = {
        name: profile[name] for name in field_owners.FACT_FIELDS if profile.get(name)
    }
    for name, value in (profile.get("extra") or {}).items():
        if value:
            out[field_owners.EXTRA_PREFIX + name] = value
    return out


def ensure(
    account_id: str, unit_id: str, roles: Iterable[str], actor: audit.Actor | str
) -> Access:
    """The account's access to the unit; a new active one with ``roles`` when it has
    none. An existing access keeps its status (a suspended one stays suspended)."""
    row = accesses_repo.get(account_id, unit_id)
    return row if row is not None else create(account_id, unit_id, roles, actor, event=None)


def move(placeholder_id: str, account_id: str, unit_id: str, source: str) -> None:
    """Stage the move of a placeholder's access to the unit onto ``account_id`` (a
    person joining a pending SCIM record): merged into the account's own access when
    it has one (roles united; the facts ``source`` owns on the placeholder's access
    taken over with their ownership; the account's status there kept), else the
    access itself changes hands."""
    theirs = accesses_repo.get(placeholder_id, unit_id)
    if theirs is None:
        return
    mine = accesses_repo.get(account_id, unit_id)
    if mine is None:
        theirs.account_id = account_id
        return
    mine.roles = sorted(set(mine.roles or []) | set(theirs.roles or []))
    taken = {
        name: field_owners.fact_value(theirs, name)
        for name, owner in field_owners.owners(theirs).items()
        if owner == source
    }
    accesses_repo.delete(theirs)
    accesses_repo.flush()  # the unique (account, unit) row goes before the merge
    set_facts(mine, taken, source)


def stage_upstream_roles(
    account_id: str, unit_id: str, roles: Iterable[str], owned: set[str], actor: audit.Actor
) -> Access:
    """Stage the access's roles as an upstream login maps them (federation): the
    roles the connector ``owned`` are replaced by ``roles``, the others kept. A new
    access is active with ``roles`` (created by ``actor``); an existing one keeps its
    status (a suspended access stays suspended). Returns the access."""
    row = accesses_repo.get(account_id, unit_id)
    if row is None:
        return create(account_id, unit_id, roles, actor, event=None)
    kept = [r for r in row.roles or [] if r not in owned]
    set_roles(row, list(dict.fromkeys([*kept, *roles])))
    return row


def set_roles(row: Access, roles: Iterable[str]) -> bool:
    """Stage ``roles`` on the access; True when they changed. The caller audits (its
    event names why the roles changed: a group, a directory, a rule)."""
    new = list(roles)
    if new == list(row.roles or []):
        return False
    row.roles = new
    return True


def _set_status(
    account_id: str,
    unit_id: str,
    status: AccessStatus,
    actor: audit.Actor | str,
    action: str,
    details: dict[str, Any] | None = None,
    row: Access | None = None,
) -> bool:
    row = row if row is not None else accesses_repo.get(account_id, unit_id)
    if row is None or row.status == status.value:
        return False
    old = row.status
    row.status = status.value
    change = {"unit_id": unit_id, "from": old, "to": status.value, **(details or {})}
    audit.record(actor, action, account_id, change)
    if status == AccessStatus.SUSPENDED:
        _announce("access.suspended", row, actor)
    else:
        _announce("access.updated", row, actor, status=status.value, changed=["status"])
    return True


def activate(account_id: str, unit_id: str, actor: audit.Actor | str) -> bool:
    """Stage an invited access (with platform access) becoming active; True when it
    did. Any other access is left alone (False): a suspended one stays suspended."""
    row = accesses_repo.get(account_id, unit_id)
    if row is None or row.status != AccessStatus.INVITED or row.platform_access is False:
        return False
    return _set_status(
        account_id, unit_id, AccessStatus.ACTIVE, actor, "access.activated", row=row
    )


def suspend(
    account_id: str,
    unit_id: str,
    actor: audit.Actor | str,
    details: dict[str, Any] | None = None,
    row: Access | None = None,
) -> bool:
    """Stage the suspension of the access (roles and facts kept on it) and the
    revocation of every live grant issued for the unit (its tokens stop working at
    once), audited with ``details`` and the number of grants revoked. The person's
    account, sessions and other accesses are untouched; True when the status changed.
    ``row``: the access when the caller has already loaded it (bulk actions)."""
    row = row if row is not None else accesses_repo.get(account_id, unit_id)
    if row is None or row.status == AccessStatus.SUSPENDED:
        return False
    revoked = grants_repo.revoke_for_unit(account_id, unit_id)
    return _set_status(
        account_id, unit_id, AccessStatus.SUSPENDED, actor, "access.suspended",
        {**(details or {}), "grants_revoked": revoked}, row,
    )


def reactivate(
    account_id: str, unit_id: str, actor: audit.Actor | str, row: Access | None = None
) -> bool:
    """Stage a suspended access becoming active again with its kept roles."""
    return _set_status(
        account_id, unit_id, AccessStatus.ACTIVE, actor, "access.resumed", row=row
    )


def set_end(
    account_id: str, unit_id: str, ends_at: datetime | None, actor: audit.Actor | str
) -> bool:
    """Stage the access's end (None: open-ended); after it the access grants nothing,
    whatever its status. True when it changed."""
    row = accesses_repo.get(account_id, unit_id)
    if row is None or row.ends_at == ends_at:
        return False
    row.ends_at = ends_at
    audit.record(actor, "access.end_set", account_id,
                 {"unit_id": unit_id, "ends_at": ends_at.isoformat() if ends_at else None})
    _announce("access.updated", row, actor, status=row.status, changed=["ends_at"])
    return True


def remove(
    account_id: str, unit_id: str, actor: audit.Actor | str, row: Access | None = None
) -> bool:
    """Stage the deletion of the access (its roles and facts go with it)."""
    row = row if row is not None else accesses_repo.get(account_id, unit_id)
    if row is None:
        return False
    accesses_repo.delete(row)
    accesses_repo.flush()  # gone before anything else staged (a new access) is inserted
    audit.record(actor, "access.removed", account_id, {"unit_id": unit_id})
    _announce("access.removed", row, actor)
    return True


def record_signin(account_id: str, unit_id: str | None, at: datetime | None = None) -> None:
    """Stage ``last_signin_at`` of the access the sign-in went through: one UPDATE,
    meant to ride in the transaction of the sign-in record (no read)."""
    if unit_id:
        accesses_repo.stage_signin(account_id, unit_id, at or utcnow())


def set_facts(
    row: Access, changes: dict[str, str | None], source: str, *, refuse: bool = True
) -> field_owners.Change:
    """Stage employer facts on the access: ``cost_centre``, ``personnel_number``,
    ``department`` and the unit's fields as ``extra.<name>`` (None clears), under the
    one ownership rule (:func:`idp.accounts.field_owners.take`, the same as for the account's
    personal fields): ``source`` (``scim``, ``ldap``, ``sso``, ``employee``) becomes
    the owner of each fact it sets and hands it back to the employee when it clears
    it. A fact a higher-ranked source owns is :class:`FieldOwned` (nothing staged)
    when ``refuse``, else left alone and named in ``skipped``.

    A unit field's value must fit the field's type (:func:`idp.units.field_types.normalise`)
    and is stored in its canonical form; one that does not is :class:`InvalidValue`
    (nothing staged) when ``refuse``, else left alone and named in ``skipped``. A
    field the company sets (``set_by`` company) is never the employee's to write
    (:class:`FieldOwned` when ``refuse``, else skipped)."""
    owned = field_owners.owners(row)
    original = dict(owned)
    extra = dict(row.extra or {})
    result = field_owners.Change()
    defined = (
        {f.name: f for f in units_repo.fields(row.unit_id)}
        if any(n.startswith(field_owners.EXTRA_PREFIX) for n in changes) else {}
    )
    for name, value in changes.items():
        if not field_owners.is_fact(name):
            raise InvalidValue(f"{name} is not an employer fact")
        if value == "":
            value = None
        definition = defined.get(name[len(field_owners.EXTRA_PREFIX):])
        if definition is not None and value is not None:
            try:
                value = field_types.normalise(definition, value)
            except field_types.FieldValueError as exc:
                if refuse:
                    raise InvalidValue(str(exc)) from exc
                result.skipped.append(name)  # a lenient writer (LDAP, SSO) goes on
                continue
        if (definition is not None and source == field_owners.EMPLOYEE
                and field_types.company_set(definition)):
            if refuse:
                raise FieldOwned(f"{name} is managed by the company")
            result.skipped.append(name)
            continue
        if not field_owners.take(owned, name, value, source, refuse=refuse):
            result.skipped.append(name)
            continue
        if name.startswith(field_owners.EXTRA_PREFIX):
            key = name[len(field_owners.EXTRA_PREFIX):]
            if extra.get(key) != value:
                result.fields.append(name)
                if value is None:
                    extra.pop(key, None)
                else:
                    extra[key] = value
                result.values["extra"] = extra
        elif getattr(row, name) != value:
            result.values[name] = value
            result.fields.append(name)
    if owned != original:
        result.values["field_owners"] = owned
    for name, value in result.values.items():
        setattr(row, name, value)
    return result


@dataclass(frozen=True)
class Activity:
    """What an administrator sees of a person's activity through one access."""

    status: str
    granting: bool
    registered: bool  # the person proved their address or signed in at least once
    last_signin_at: datetime | None


def activity(account_id: str, unit_id: str) -> Activity | None:
    """The activity status of the account's access to the unit, None without one."""
    row = accesses_repo.get(account_id, unit_id)
    account = accesses_repo.account(account_id)
    if row is None or account is None:
        return None
    registered = bool(account.email_verified) or row.last_signin_at is not None or (
        accesses_repo.signed_in_ever(account_id)
    )
    return Activity(row.status, row.grants(), registered, row.last_signin_at)


MAIN_USER = "main_user"


def is_last_main_user(account_id: str, unit_id: str) -> bool:
    """True when the account is the only one left holding ``main_user`` through a
    granting access (active, with platform access, not ended; the account active) in
    the customer ``unit_id`` (a top-level unit). A sub-unit is administered by its
    customer's main users as well, so it never has a "last" one (False).

    Callers that then take the main user away (suspend, remove, demote, platform
    access off) lock the unit first (:func:`lock_for_main_users`) so two
    administrators removing each other at once cannot both pass."""
    unit = accesses_repo.unit(unit_id)
    if unit is None or unit.parent_id is not None:
        return False
    accesses_repo.flush()  # what the caller staged counts (a bulk action's earlier items)
    holders = accesses_repo.main_users(unit_id, utcnow())
    return account_id in holders and len(set(holders)) == 1


def lock_for_main_users(unit_id: str) -> None:
    """Serialise the changes that may take a unit's last main user away."""
    accesses_repo.lock_unit(unit_id)


def would_drop_main_user(
    row: Access,
    roles: Iterable[str] | None = None,
    platform_access: bool | None = None,
    status: AccessStatus | None = None,
    removing: bool = False,
) -> bool:
    """Whether the change (new ``roles``, ``platform_access``, ``status`` or the
    removal) takes away the customer's last main user (:func:`is_last_main_user`)."""
    if MAIN_USER not in (row.roles or []) or not row.grants():
        return False
    keeps = not removing
    if roles is not None and MAIN_USER not in roles:
        keeps = False
    if platform_access is False or (status is not None and status != AccessStatus.ACTIVE):
        keeps = False
    if keeps:
        return False
    return is_last_main_user(row.account_id, row.unit_id)


def set_settings(
    row: Access,
    actor: audit.Actor | str,
    roles: list[str] | None = None,
    platform_access: bool | None = None,
    notifications: list[str] | None = None,
    reset_notifications: bool = False,
) -> list[str]:
    """Stage an administrator's change of the access's roles (base roles and
    permission groups, validated by the caller), platform access and notification
    choice (``reset_notifications``: back to the roles' defaults), and one
    ``access.updated`` audit event naming what changed (not the values of personal
    data). Taking platform access away revokes the unit's live grants like a
    suspension. Returns the names of the changed settings (empty: nothing changed,
    nothing recorded)."""
    changed: list[str] = []
    details: dict[str, Any] = {"unit_id": row.unit_id}
    if roles is not None and set_roles(row, roles):
        changed.append("roles")
        details["roles"] = sorted(roles)
    if platform_access is not None and bool(row.platform_access) != platform_access:
        row.platform_access = platform_access
        changed.append("platform_access")
        details["platform_access"] = platform_access
        if not platform_access:
            details["grants_revoked"] = grants_repo.revoke_for_unit(row.account_id, row.unit_id)
    if reset_notifications and row.notifications is not None:
        row.notifications = None
        changed.append("notifications")
        details["notifications"] = None
    elif notifications is not None and row.notifications != notifications:
        row.notifications = list(notifications)
        changed.append("notifications")
        details["notifications"] = list(notifications)
    if changed:
        details["changed"] = changed
        audit.record(actor, "access.updated", row.account_id, details)
        _announce("access.updated", row, actor, status=row.status, changed=changed)
    return changed
