"""What an administrator does to a unit's accesses (issue 12, items 4 and 7): link an
existing person, change roles, permission groups, platform access and notifications,
suspend, reactivate, remove, search, list and act in bulk. The API, the CLI and the
console call these; each write commits here (``atomic()``) with its audit event.

The staging primitives stay in :mod:`idp.accounts.accesses` (one home per concept);
this module decides who may see whom and refuses what must not happen:

* **Whom an administrator may see** (:func:`units_where`): the units where the actor
  holds a permission, with their sub-units. People are found (search, link by
  e-mail or account id) only when they already hold an access in one of those units,
  so a unit's administrator can never learn whether an address has an account
  somewhere else on the platform: an unknown address and a stranger's address both
  answer ``no_such_person`` (invite them instead; the invitation links an existing
  account when they accept).
* **The last main user** of a customer is never suspended, removed, demoted or cut
  off from the platform (``last_main_user``).
* **Bulk actions** walk their selection in keyset batches of :data:`BATCH`, each batch
  in its own transaction, authorised per unit, and keep only the items that were not
  ``done`` (at most :data:`MAX_REPORTED`) besides the counts: memory stays constant
  whatever the selection's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from idp import audit
from idp.accounts import accesses, invites, notifications
from idp.accounts.lifecycle import InvalidEmail, normalise_email
from idp.rights import Actor, NotPermitted, holds_more_rights, may
from idp.rights.authorization import audit_actor, permissions, require_grant, visible_customers
from idp.rights.catalogue import ALL
from idp.store import access_lists_repo, accesses_repo, rights_repo
from idp.store.access_lists_repo import Filter
from idp.store.models import Access, AccessStatus
from idp.store.unit_of_work import Conflict, atomic
from idp.units import registry as units

BATCH = 500
MAX_REPORTED = 1000
MAX_IDS = 1000
SEARCH_LIMIT = 20
SEARCH_MIN = 2


class Refused(Exception):
    """An administrator's change is refused; ``code`` says why (``not_found``,
    ``no_such_person``, ``access_exists``, ``last_main_user``, ``invalid_role``,
    ``invalid_group``, ``unknown_event``, ``forbidden``: a role granting more than
    the actor holds), ``field`` which input when one is to blame."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


# -- who may see whom --------------------------------------------------------------


def omnipotent(actor: Actor) -> bool:
    """The system and operator clients: every permission everywhere."""
    return permissions(actor, None) == ALL


def units_where(actor: Actor, permission: str) -> frozenset[str] | None:
    """The units where ``actor`` holds ``permission`` (with every sub-unit), or None
    for every unit (the system, an operator client)."""
    if omnipotent(actor):
        return None
    return access_lists_repo.subtree_ids(roots_where(actor, {permission}))


def roots_where(actor: Actor, wanted: set[str] | frozenset[str]) -> set[str]:
    """The units where ``actor`` holds one of ``wanted`` by its own standing, without
    their sub-units: a unit's client's bound unit, a staff member's assigned
    customers, the units of an account's granting accesses (the console's unit list).
    Empty for the omnipotent (they stand nowhere in particular)."""
    roots: set[str] = set()
    if actor.kind == "client":
        # a unit's client acts in its bound unit and below, not in the whole customer
        client = rights_repo.admin_client(actor.client_id or "")
        roots = {client.unit_id} if client is not None and client.unit_id else set()
    elif actor.kind == "staff":
        roots = {c for c in visible_customers(actor) or set() if permissions(actor, c) & wanted}
    elif actor.account_id is not None:
        for row in accesses_repo.of_account(actor.account_id):
            if row.grants() and row.roles and permissions(actor, row.unit_id) & wanted:
                roots.add(row.unit_id)
    return roots


def scope(actor: Actor, permission: str, unit_id: str | None, sub_units: bool) -> Filter:
    """The filter bounding a list: the unit (and its sub-units), or for ``unit_id``
    None every unit where the actor holds ``permission``."""
    if unit_id is not None:
        ids = access_lists_repo.subtree_ids([unit_id]) if sub_units else frozenset({unit_id})
        return Filter(unit_ids=ids)
    return Filter(unit_ids=units_where(actor, permission))


# -- one access --------------------------------------------------------------------


def get(unit_id: str, access_id: str) -> Access:
    """The access ``access_id`` of the unit ``unit_id``; ``not_found`` otherwise (an
    access of another unit, a sub-unit's included, is addressed under its own unit)."""
    row = access_lists_repo.in_unit(access_id, unit_id)
    if row is None:
        raise Refused("not_found", "No such access in this unit.")
    return row


def split_roles(roles: list[str] | None) -> tuple[list[str], list[str]]:
    """The built-in roles and the permission groups of an access's ``roles``."""
    base = [r for r in roles or [] if r in units.BASE_ROLES]
    return base, [r for r in roles or [] if r not in units.BASE_ROLES]


def describe(row: Any) -> dict[str, Any]:
    """An access (a list row or an ORM access with its account and unit) as the API
    and the CLI show it."""
    if isinstance(row, Access):
        email, given, family = row.account.email, row.account.given_name, row.account.family_name
        unit_name = row.unit.name
    else:
        email, given, family, unit_name = row.email, row.given_name, row.family_name, row.unit_name
    base, groups = split_roles(row.roles)
    return {
        "id": row.id, "unit_id": row.unit_id, "unit_name": unit_name,
        "account_id": row.account_id, "email": email, "given_name": given,
        "family_name": family, "status": row.status, "roles": base,
        "permission_groups": groups, "platform_access": row.platform_access is not False,
        "notifications": notifications.effective(row.roles or [], row.notifications),
        "notifications_default": row.notifications is None, "created_at": row.created_at,
        "ends_at": row.ends_at, "last_signin_at": row.last_signin_at,
        "details_sent_at": row.details_sent_at,
        "password_status": _password_status(row),
    }


def _password_status(row: Any) -> str | None:
    """The access's person's password status (a list row carries it; an ORM access
    asks once). Never the password."""
    if isinstance(row, Access):
        from idp.factors import passwords

        return passwords.status(row.account_id)
    return getattr(row, "password_status", None)


def _validated_roles(unit_id: str, roles: list[str], groups: list[str]) -> list[str]:
    unit = units.get(unit_id)
    for role in roles:
        if role not in units.BASE_ROLES:
            raise Refused(
                "invalid_role",
                f"{role!r} is not a role; one of " + ", ".join(units.BASE_ROLES),
                "roles",
            )
    defined = set(units.group_names(unit))
    for group in groups:
        if group not in defined:
            raise Refused(
                "invalid_group", f"{group!r} is not a permission group of this unit",
                "permission_groups",
            )
    return units.validate_roles(unit, [*roles, *groups])


def _grantable(actor: Actor, unit_id: str, added: list[str]) -> None:
    """``forbidden`` unless the actor holds every permission the ``added`` roles
    grant in the unit (:func:`idp.rights.authorization.require_grant`)."""
    try:
        require_grant(actor, unit_id, added)
    except NotPermitted as exc:
        raise Refused(
            "forbidden",
            f"Granting these roles needs the permission {exc.permission!r}, which you do "
            "not hold here: nobody hands out more than they hold.",
            "roles",
        ) from exc


def _validated_events(names: list[str] | None) -> list[str] | None:
    if names is None:
        return None
    try:
        return notifications.validate(names)
    except notifications.UnknownEvent as exc:
        raise Refused("unknown_event", str(exc), "notifications") from exc


def checked_settings(
    actor: Actor, unit_id: str, roles: list[str], groups: list[str], events: list[str] | None
) -> tuple[list[str], list[str] | None]:
    """The access's roles (built-in and groups) and notification events as
    :func:`link` would store them, checked the same way (``invalid_role``,
    ``invalid_group``, ``forbidden``, ``unknown_event``): the CSV import's rows."""
    wanted = _validated_roles(unit_id, roles, groups)
    _grantable(actor, unit_id, wanted)
    return wanted, _validated_events(events)


def link(
    actor: Actor,
    unit_id: str,
    *,
    email: str | None = None,
    account_id: str | None = None,
    roles: list[str],
    groups: list[str],
    platform_access: bool = True,
    events: list[str] | None = None,
    who: audit.Actor | None = None,
) -> Access:
    """Give an existing person an access to the unit (no second account): found by
    ``email`` or ``account_id`` among the people the actor may see (see the module);
    ``no_such_person`` otherwise, ``access_exists`` when they already hold one."""
    wanted = _validated_roles(unit_id, roles, groups)
    _grantable(actor, unit_id, wanted)
    chosen = _validated_events(events)
    seen = units_where(actor, "users.manage")
    address = None
    if email is not None:
        try:
            address = normalise_email(email)
        except InvalidEmail as exc:
            raise Refused("invalid_email", "The e-mail address is not valid.", "email") from exc
    person = access_lists_repo.visible_account(seen, email=address, account_id=account_id)
    if person is None:
        raise Refused(
            "no_such_person",
            "Nobody you may see has this address or id; invite them as a new person.",
            "email" if email is not None else "account_id",
        )
    who = who or audit_actor(actor)
    try:
        with atomic():
            if accesses_repo.get(person.id, unit_id) is not None:
                raise Refused("access_exists", "This person already has an access to the unit.")
            row = stage_link(person.id, unit_id, wanted, platform_access, chosen, who)
    except Conflict as exc:
        raise Refused("access_exists", "This person already has an access to the unit.") from exc
    return row


def stage_link(
    account_id: str, unit_id: str, roles: list[str], platform_access: bool,
    events: list[str] | None, who: audit.Actor,
) -> Access:
    """Stage (in the caller's transaction) the ``active`` access of an existing
    person, audited ``access.linked``; the caller checked everything (:func:`link`,
    the CSV import)."""
    row = accesses.create(account_id, unit_id, roles, who, event=None)
    row.platform_access = platform_access
    row.notifications = events
    audit.record(who, "access.linked", account_id, {
        "unit_id": unit_id, "roles": sorted(roles), "platform_access": platform_access,
    })
    return row


def update(
    actor: Actor,
    row: Access,
    *,
    roles: list[str] | None = None,
    groups: list[str] | None = None,
    platform_access: bool | None = None,
    events: list[str] | None = None,
    reset_events: bool = False,
    who: audit.Actor | None = None,
) -> list[str]:
    """Change the access's roles and/or permission groups (each list replaces its
    half), platform access and notifications; the names of what changed."""
    new_roles = None
    if roles is not None or groups is not None:
        base, custom = split_roles(row.roles)
        new_roles = _validated_roles(
            row.unit_id,
            roles if roles is not None else base,
            groups if groups is not None else custom,
        )
    if platform_access is True and row.platform_access is False:
        # switching platform access on hands every role out again
        _grantable(actor, row.unit_id, new_roles if new_roles is not None else row.roles or [])
    elif new_roles is not None:
        _grantable(actor, row.unit_id, [r for r in new_roles if r not in (row.roles or [])])
    chosen = _validated_events(events)
    who = who or audit_actor(actor)
    with atomic():
        accesses.lock_for_main_users(row.unit_id)
        if accesses.would_drop_main_user(row, roles=new_roles, platform_access=platform_access):
            raise Refused("last_main_user", "The customer's last main user must stay one.")
        return accesses.set_settings(
            row, who, roles=new_roles, platform_access=platform_access,
            notifications=chosen, reset_notifications=reset_events,
        )


# -- status changes: the one dispatch of single and bulk actions --------------------


@dataclass(frozen=True)
class Outcome:
    """What an action did to one access: ``done``, ``unchanged`` or ``refused`` (with
    a ``code``)."""

    outcome: str
    code: str | None = None
    # outbox messages the action staged, handed to the courier once committed
    messages: tuple[str, ...] = ()


DONE = Outcome("done")
UNCHANGED = Outcome("unchanged")
FORBIDDEN = Outcome("refused", "forbidden")


def _suspend(row: Access, who: audit.Actor) -> Outcome:
    if row.status == AccessStatus.SUSPENDED:
        return UNCHANGED
    if accesses.would_drop_main_user(row, status=AccessStatus.SUSPENDED):
        return Outcome("refused", "last_main_user")
    return DONE if accesses.suspend(row.account_id, row.unit_id, who, row=row) else UNCHANGED


def _reactivate(row: Access, who: audit.Actor) -> Outcome:
    if row.status != AccessStatus.SUSPENDED:
        return UNCHANGED
    return DONE if accesses.reactivate(row.account_id, row.unit_id, who, row=row) else UNCHANGED


def _remove(row: Access, who: audit.Actor) -> Outcome:
    if accesses.would_drop_main_user(row, removing=True):
        return Outcome("refused", "last_main_user")
    return DONE if accesses.remove(row.account_id, row.unit_id, who, row=row) else UNCHANGED


def _resend(row: Access, who: audit.Actor) -> Outcome:
    """Send the access details again (a re-invite, :mod:`idp.accounts.invites`); the
    outbox delivers them once the batch commits. Only an ``invited`` access with
    platform access has details to send."""
    try:
        messages = invites.stage_resend(row, who)
        if messages is None:
            # an active access in a unit that allows passwords: a new generated
            # password, unless the person chose their own (idp.factors.passwords)
            messages = invites.stage_details(row, who)
    except invites.SendLimit:
        return Outcome("refused", "too_many_invitations")
    if messages is None:
        return Outcome("refused", "not_invited")
    return Outcome("done", messages=tuple(messages))


def _reset_password(row: Access, who: audit.Actor) -> Outcome:
    """A new generated password (status ``reset_by_staff``) mailed to the person; the
    old one stops working. Refused (``passwords_not_allowed``) unless the person may
    use a password (:func:`idp.factors.passwords.allowed`) and this access grants in
    a unit that allows them."""
    from idp.factors import passwords

    account = row.account
    unit = row.unit
    if not row.grants() or not unit.passwords_allowed:
        return Outcome("refused", "passwords_not_allowed")
    message = passwords.stage_reset(account, row.unit_id, unit.name, who)
    if message is None:
        return Outcome("refused", "passwords_not_allowed")
    return Outcome("done", messages=(message,))


ACTIONS: dict[str, Callable[[Access, audit.Actor], Outcome]] = {
    "suspend": _suspend,
    "reactivate": _reactivate,
    "remove": _remove,
    "resend": _resend,
    "reset_password": _reset_password,
}
# Actions that act on the person behind the access as much as on the access: only an
# actor who could grant all of the access's roles may (:func:`_may_hand_out_again`).
ON_THE_PERSON = frozenset({"reset_password"})


def act(actor: Actor, action: str, row: Access, who: audit.Actor | None = None) -> Outcome:
    """One action on one access, in its own transaction (the API's single calls);
    ``who``: the audit log's actor when not the actor's own (the CLI's user)."""
    who = who or audit_actor(actor)
    if not _may_hand_out_again(actor, action, row):
        return FORBIDDEN
    with atomic():
        accesses.lock_for_main_users(row.unit_id)
        outcome = ACTIONS[action](row, who)
    invites.deliver(list(outcome.messages))
    return outcome


def _on_the_person(action: str, row: Access) -> bool:
    """Whether ``action`` on ``row`` acts on its person (:data:`ON_THE_PERSON`; and
    "resend" for an active access, which mails a new generated password in place of
    the person's generated one, :func:`idp.accounts.invites.stage_details`)."""
    return action in ON_THE_PERSON or (action == "resend" and row.status == AccessStatus.ACTIVE)


def _may_hand_out_again(actor: Actor, action: str, row: Access) -> bool:
    """Reactivating a suspended access hands its roles out again, and a password
    reset acts on its person: only an actor who could grant those roles may
    (:func:`_grantable`), so nobody resets the password of a stronger account: for
    an action on the person, their rights in every other unit count too
    (:func:`idp.rights.holds_more_rights`), not only this access's roles."""
    on_person = _on_the_person(action, row)
    if not on_person and (action != "reactivate" or row.status != AccessStatus.SUSPENDED):
        return True
    try:
        require_grant(actor, row.unit_id, list(row.roles or []))
    except NotPermitted:
        return False
    return not on_person or not holds_more_rights(row.account_id, actor)


# -- lists -------------------------------------------------------------------------


def page(f: Filter, after: tuple[str | None, str] | None, limit: int) -> tuple[list[Any], bool]:
    """One page of the list (rows), and whether there are more."""
    rows = list(access_lists_repo.page(f, after, limit + 1))
    return rows[:limit], len(rows) > limit


def count(f: Filter) -> int:
    return access_lists_repo.count(f)


def search_people(actor: Actor, q: str, limit: int) -> list[Any]:
    """People who hold an access in a unit the actor administers (``users.manage``:
    the people :func:`link` can find) whose address or name starts with ``q`` (at
    least :data:`SEARCH_MIN` characters)."""
    if len(q.strip()) < SEARCH_MIN:
        raise Refused("query_too_short", f"Type at least {SEARCH_MIN} characters.", "q")
    seen = units_where(actor, "users.manage")
    return list(access_lists_repo.people(seen, q.strip(), min(limit, SEARCH_LIMIT)))


# -- bulk --------------------------------------------------------------------------


@dataclass
class BulkResult:
    """Counts per outcome and the items that were not ``done`` (bounded)."""

    counts: dict[str, int] = field(default_factory=lambda: {"done": 0, "unchanged": 0,
                                                            "refused": 0})
    items: list[dict[str, Any]] = field(default_factory=list)
    omitted: int = 0

    def add(self, access_id: str, outcome: Outcome) -> None:
        self.counts[outcome.outcome] = self.counts.get(outcome.outcome, 0) + 1
        if outcome.outcome == "done":
            return
        if len(self.items) < MAX_REPORTED:
            self.items.append({"id": access_id, "outcome": outcome.outcome, "code": outcome.code})
        else:
            self.omitted += 1


def _batches(f: Filter) -> Iterator[list[str]]:
    after: tuple[str | None, str] | None = None
    while True:
        keys = access_lists_repo.keys(f, after, BATCH)
        if not keys:
            return
        yield [k.id for k in keys]
        after = (keys[-1].email, keys[-1].id)
        if len(keys) < BATCH:
            return


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start:start + BATCH]


def bulk(actor: Actor, action: str, bounds: Filter, ids: list[str] | None,
         f: Filter | None, who: audit.Actor | None = None) -> BulkResult:
    """Run ``action`` (a key of :data:`ACTIONS`) on the accesses ``ids`` or on every
    access matching ``f``, both within ``bounds`` (the units the caller may manage).
    Each batch commits on its own; a batch that fails as a whole (a concurrent
    change) is run again item by item. Every unit is authorised (``users.manage``)."""
    run = ACTIONS[action]
    who = who or audit_actor(actor)
    allowed: dict[str, bool] = {}
    everything = omnipotent(actor)
    result = BulkResult()

    def permitted(unit_id: str) -> bool:
        if everything:
            return True
        if unit_id not in allowed:
            allowed[unit_id] = may(actor, "users.manage", unit_id)
        return allowed[unit_id]

    again: dict[tuple[str, tuple[str, ...]], bool] = {}

    def may_hand_out_again(row: Access) -> bool:
        if everything:
            return True
        if _on_the_person(action, row):  # the person's other rights count: per row
            return _may_hand_out_again(actor, action, row)
        if action != "reactivate" or row.status != AccessStatus.SUSPENDED:
            return True
        key = (row.unit_id, tuple(sorted(row.roles or [])))
        if key not in again:
            again[key] = _may_hand_out_again(actor, action, row)
        return again[key]

    def one_batch(batch: list[str], report_missing: bool) -> list[str]:
        """Run the batch; the outbox messages its actions staged."""
        found = {row.id: row for row in access_lists_repo.by_ids(batch)}
        outcomes: list[tuple[str, Outcome]] = []
        for access_id in batch:
            row = found.get(access_id)
            in_bounds = row is not None and (
                bounds.unit_ids is None or row.unit_id in bounds.unit_ids
            )
            if row is None or not in_bounds or not permitted(row.unit_id):
                if report_missing:
                    outcomes.append((access_id, Outcome("refused", "not_found")))
                continue
            if not may_hand_out_again(row):
                outcomes.append((access_id, FORBIDDEN))
                continue
            if row.roles and accesses.MAIN_USER in row.roles:
                accesses.lock_for_main_users(row.unit_id)
            outcomes.append((access_id, run(row, who)))
        for access_id, outcome in outcomes:
            result.add(access_id, outcome)
        return [m for _, outcome in outcomes for m in outcome.messages]

    def guarded(batch: list[str], report_missing: bool) -> None:
        snapshot = (dict(result.counts), len(result.items), result.omitted)
        try:
            with atomic(), accesses_repo.batched():
                messages = one_batch(batch, report_missing)
            invites.deliver(messages)
        except Conflict:
            result.counts, result.omitted = snapshot[0], snapshot[2]
            del result.items[snapshot[1]:]
            for access_id in batch:
                try:
                    with atomic():
                        messages = one_batch([access_id], report_missing)
                    invites.deliver(messages)
                except Conflict:
                    result.add(access_id, Outcome("refused", "conflict"))

    if ids is not None:
        for chunk in _chunks(list(dict.fromkeys(ids))):
            guarded(chunk, True)
    else:
        scoped = replace(f or Filter(), unit_ids=bounds.unit_ids)
        for chunk in _batches(scoped):
            guarded(chunk, False)
    return result
