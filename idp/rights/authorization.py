"""The one authorisation function: may this actor do this to this unit?

Every administrative path calls :func:`may` (or :func:`require`) with the unit the
resource belongs to; issues 12-14 turn :class:`NotPermitted` for a foreign unit into
a 404 so an admin of unit A cannot tell unit B's resources exist.

Rules (``docs/architecture.md``, "Rights"):

- ``system`` (the operator's own CLI, schedulers) may everything.
- An ``account`` holds in unit U the union of the permissions of its membership
  roles in U and in every ancestor of U: built-in roles
  (:data:`idp.rights.catalogue.BUILT_IN`) and the custom permission groups of the
  unit the membership is in. Rights flow *down* the tree only: a main user of a
  company administers its sub-units, a main user of a sub-unit neither its parent
  nor its siblings.
- A ``staff`` actor (the operator's people, ``staff_members``) holds, in a unit whose
  chain contains a customer it is assigned to, every permission (``administrator``)
  or the assignment's named permissions (``processor``). A staff actor's own
  memberships do not count, nor does an account actor's staff assignment: the actor's
  kind says in which capacity it acts.
- An account that cannot sign in (blocked, locked, deleted) holds nothing, in
  either capacity.
- A ``client`` actor is a client-credentials client of the administration API
  (``admin_clients``): one bound to a unit holds the administration permissions
  (:data:`idp.rights.catalogue.ADMINISTRATION`) in that unit and its sub-units; an
  operator client (no unit) holds every permission everywhere. A client whose
  registration is gone holds nothing.
- *Platform-wide* decisions (``unit_id`` None: create a customer, read the whole
  audit log, manage staff) belong to the system, to operator clients and to
  *platform staff*: the staff members the operator names in
  ``IDP_PLATFORM_STAFF`` (:func:`platform_staff`), who hold every permission in
  every unit as an operator client does; other staff act in the customers assigned
  to them (:func:`visible_customers`).

Cost: at most five queries per decision (unit chain in one recursive query,
account or staff record, memberships or assignments, custom groups), whatever the
depth of the tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from idp import audit
from idp.rights import catalogue
from idp.rights.catalogue import UnknownPermission
from idp.services import settings
from idp.store import accesses_repo, rights_repo
from idp.store.models import Access, utcnow

ActorKind = Literal["account", "staff", "client", "system"]
ADMINISTRATOR = "administrator"
PROCESSOR = "processor"


@dataclass(frozen=True)
class Actor:
    """Who asks: an employee account, an operator staff member (by their account id),
    an administration API client (by its ``client_id``), or the system itself."""

    kind: ActorKind
    account_id: str | None = None
    client_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("account", "staff", "client", "system"):
            raise ValueError(f"unknown actor kind {self.kind!r}")
        if (self.kind in ("account", "staff")) != (self.account_id is not None):
            raise ValueError("account and staff actors name an account; others do not")
        if (self.kind == "client") != (self.client_id is not None):
            raise ValueError("a client actor names its client; others do not")

    @classmethod
    def account(cls, account_id: str) -> Actor:
        return cls("account", account_id)

    @classmethod
    def staff(cls, account_id: str) -> Actor:
        return cls("staff", account_id)

    @classmethod
    def client(cls, client_id: str) -> Actor:
        return cls("client", client_id=client_id)

    @classmethod
    def system(cls) -> Actor:
        return cls("system")

    def audit_name(self) -> str:
        """The actor as the audit log's actor string."""
        if self.kind == "client":
            return f"client:{self.client_id}"
        return "system" if self.account_id is None else f"{self.kind}:{self.account_id}"


SYSTEM = Actor.system()


def person(account_id: str) -> Actor:
    """The actor a signed-in person acts as on the administration pages and the API
    by session: staff when the account is one of the operator's staff members (their
    own memberships then do not count, see the module's rules), else the account."""
    if rights_repo.staff_member(account_id) is not None:
        return Actor.staff(account_id)
    return Actor.account(account_id)


def audit_actor(actor: Actor) -> audit.Actor:
    """The audit log's structured actor for ``actor``."""
    if actor.kind == "client" and actor.client_id is not None:
        return audit.Actor.client(actor.client_id)
    if actor.kind == "staff" and actor.account_id is not None:
        return audit.Actor.staff(actor.account_id)
    if actor.kind == "account" and actor.account_id is not None:
        return audit.Actor.account(actor.account_id)
    return audit.Actor.system()


class NotPermitted(Exception):
    """The actor may not do this to this unit. ``foreign`` is True when the actor
    holds no permission at all in the unit (or it does not exist): admin paths
    answer 404 then, so the unit's existence does not leak, and 403 otherwise."""

    def __init__(self, actor: Actor, permission: str, unit_id: str, foreign: bool) -> None:
        super().__init__(f"{actor.audit_name()} may not {permission} in unit {unit_id}")
        self.actor = actor
        self.permission = permission
        self.unit_id = unit_id
        self.foreign = foreign


def _can_act(account_id: str) -> bool:
    account = rights_repo.account(account_id)
    return account is not None and account.can_sign_in


def _account_permissions(
    account_id: str, chain: list[str], accesses: Iterable[Access] | None = None
) -> frozenset[str]:
    if not _can_act(account_id):
        return frozenset()
    held: set[str] = set()
    custom: dict[str, set[str]] = {}
    now = utcnow()
    if accesses is None:
        accesses = accesses_repo.in_units(account_id, chain)
    for access in accesses:
        if access.account_id != account_id or access.unit_id not in chain:
            continue
        if not access.grants(now):  # suspended, invited, removed or ended: nothing
            continue
        for role in access.roles or []:
            if role in catalogue.BUILT_IN:
                held |= catalogue.BUILT_IN[role]
            else:
                custom.setdefault(access.unit_id, set()).add(role)
    if custom:
        names = set().union(*custom.values())
        for group in rights_repo.groups_named(custom, names):
            if group.name in custom.get(group.unit_id, ()):
                held.update(p for p in group.permissions or [] if p in catalogue.ALL)
    return frozenset(held)


def platform_staff(account_id: str) -> bool:
    """Whether ``account_id`` is one of the platform staff: a staff member who can
    sign in and whose address is listed in ``IDP_PLATFORM_STAFF``."""
    listed = {e.strip().lower() for e in settings().platform_staff.split(",") if e.strip()}
    if not listed or rights_repo.staff_member(account_id) is None:
        return False
    account = rights_repo.account(account_id)
    return (account is not None and account.can_sign_in
            and (account.email or "").lower() in listed)


def _staff_permissions(account_id: str, chain: list[str]) -> frozenset[str]:
    if not _can_act(account_id) or rights_repo.staff_member(account_id) is None:
        return frozenset()
    if platform_staff(account_id):
        return catalogue.ALL
    held: set[str] = set()
    for row in rights_repo.assignments_in(account_id, chain):
        if row.kind == ADMINISTRATOR:
            return catalogue.ALL
        held.update(p for p in row.permissions or [] if p in catalogue.ALL)
    return frozenset(held)


def _client_permissions(client_id: str, chain: list[str] | None) -> frozenset[str]:
    row = rights_repo.admin_client(client_id)
    if row is None:
        return frozenset()
    if row.unit_id is None:
        return catalogue.ALL
    if chain is not None and row.unit_id in chain:
        return catalogue.ADMINISTRATION
    return frozenset()


def permissions(actor: Actor, unit_id: str | None) -> frozenset[str]:
    """Every permission ``actor`` holds in ``unit_id`` (empty for an unknown unit),
    or platform-wide when ``unit_id`` is None. The same computation :func:`may`
    decides with; impersonation (issue 13) compares two of these sets: the target's
    must be a subset of the impersonator's."""
    if actor.kind == "system":
        return catalogue.ALL
    if unit_id is None:
        if actor.kind == "client" and actor.client_id is not None:
            return _client_permissions(actor.client_id, None)
        if actor.kind == "staff" and actor.account_id is not None:
            return catalogue.ALL if platform_staff(actor.account_id) else frozenset()
        return frozenset()
    chain = rights_repo.chain_ids(unit_id)
    if not chain:
        return frozenset()
    if actor.kind == "client" and actor.client_id is not None:
        return _client_permissions(actor.client_id, chain)
    if actor.account_id is None:
        return frozenset()
    if actor.kind == "staff":
        return _staff_permissions(actor.account_id, chain)
    return _account_permissions(actor.account_id, chain)


def may(actor: Actor, permission: str, unit_id: str | None) -> bool:
    """True when ``actor`` holds ``permission`` in the unit ``unit_id`` (directly or
    inherited from an ancestor unit, see the module's rules), or platform-wide when
    ``unit_id`` is None. An unknown unit gives False; a permission outside the
    catalogue raises :class:`UnknownPermission` (a programming error, never a
    silent refusal)."""
    if permission not in catalogue.ALL:
        raise UnknownPermission(permission)
    return permission in permissions(actor, unit_id)


def account_may(
    account_id: str, permission: str, chain: list[str], accesses: Iterable[Access]
) -> bool:
    """:func:`may` for ``Actor.account(account_id)`` in ``chain[0]``, for a caller
    that has just read the unit chain (``chain``: the unit and its ancestors, nearest
    first, as :func:`idp.store.rights_repo.chain_ids` gives it) and the account's
    accesses to those units (``accesses``; others are ignored): the same decision
    without reading them again. The purchase hot path folds the check into its own
    read of the buyer's accesses."""
    if permission not in catalogue.ALL:
        raise UnknownPermission(permission)
    if not chain:
        return False
    return permission in _account_permissions(account_id, chain, accesses)


def require(actor: Actor, permission: str, unit_id: str | None) -> frozenset[str]:
    """Return when :func:`may` (with every permission the actor holds there, for a
    caller that shows what else it may do); raise :class:`NotPermitted` otherwise
    (the same decision, computed once)."""
    if permission not in catalogue.ALL:
        raise UnknownPermission(permission)
    held = permissions(actor, unit_id)
    if permission not in held:
        raise NotPermitted(actor, permission, unit_id or "*", foreign=not held)
    return held


def role_permissions(unit_id: str, roles: list[str]) -> frozenset[str]:
    """Every permission the ``roles`` (built-in roles and the unit's own custom
    groups) grant in the unit ``unit_id``, as :func:`permissions` counts them."""
    held: set[str] = set()
    custom = [r for r in roles if r not in catalogue.BUILT_IN]
    for role in roles:
        held |= catalogue.BUILT_IN.get(role, frozenset())
    if custom:
        for group in rights_repo.groups_named([unit_id], custom):
            held.update(p for p in group.permissions or [] if p in catalogue.ALL)
    return frozenset(held)


def require_grant(actor: Actor, unit_id: str, roles: list[str]) -> None:
    """Return when ``actor`` may hand out ``roles`` in the unit ``unit_id``: every
    permission they grant is one the actor holds there (nobody raises anyone,
    themselves included, above their own rights: a ``users.manage`` holder makes no
    main user, a main user grants no ``impersonate``). :class:`NotPermitted`
    (naming the first missing permission) otherwise."""
    require_holds(actor, unit_id, role_permissions(unit_id, roles))


def require_holds(actor: Actor, unit_id: str, wanted: Iterable[str]) -> None:
    """Return when ``actor`` holds every one of the permissions ``wanted`` in the unit
    ``unit_id`` (to put them in a permission group, to hand them out); raise
    :class:`NotPermitted` naming the first missing one otherwise."""
    wanted = frozenset(wanted)
    if not wanted:
        return
    missing = wanted - permissions(actor, unit_id)
    if missing:
        raise NotPermitted(actor, sorted(missing)[0], unit_id, foreign=False)


def visible_customers(actor: Actor) -> set[str] | None:
    """The customers (top-level units) whose resources ``actor`` may be shown in
    platform-wide lists: None for all of them (the system, an operator client), the
    assigned customers for staff, the customer above the bound unit for a unit's
    client, and the customers above the units where an account holds any right.
    Each item shown must still pass :func:`may` for what it shows; this only bounds
    the search."""
    if actor.kind == "system":
        return None
    if actor.kind == "client" and actor.client_id is not None:
        row = rights_repo.admin_client(actor.client_id)
        if row is None:
            return set()
        if row.unit_id is None:
            return None
        chain = rights_repo.chain_ids(row.unit_id)
        return {chain[-1]} if chain else set()
    if actor.account_id is None or not _can_act(actor.account_id):
        return set()
    if actor.kind == "staff":
        if rights_repo.staff_member(actor.account_id) is None:
            return set()
        if platform_staff(actor.account_id):
            return None
        return {row.unit_id for row in rights_repo.assignments_of(actor.account_id)}
    now = utcnow()
    tops: set[str] = set()
    for access in accesses_repo.of_account(actor.account_id):
        if access.grants(now) and access.roles:
            chain = rights_repo.chain_ids(access.unit_id)
            if chain:
                tops.add(chain[-1])
    return tops


class ImpersonationRefused(NotPermitted):
    """The actor holds ``impersonate`` but may not act as this person: ``code`` is
    ``self`` (oneself), ``outranks`` (the person holds more rights, see
    :func:`require_impersonation`) or ``not_a_person`` (an API client or the system:
    impersonation needs a browser). Answered 403."""

    def __init__(self, actor: Actor, unit_id: str, code: str) -> None:
        super().__init__(actor, "impersonate", unit_id, foreign=False)
        self.code = code


def _holds_beyond(target_account_id: str, actor: Actor, never: frozenset[str]) -> bool:
    """Whether, in some unit where the account holds a granting access, its
    permissions there (:func:`permissions`, inherited ones included) are not a subset
    of ``actor``'s permissions in that unit, or include one of ``never``. Permissions
    only flow down the unit tree, so comparing at the units of the target's own
    accesses covers every unit. Cost: one :func:`permissions` pair per access."""
    return any(
        held & never or not held <= permissions(actor, unit_id)
        for unit_id, held in _held_by_access(target_account_id)
    )


def _held_by_access(account_id: str) -> Iterator[tuple[str, frozenset[str]]]:
    """(unit id, permissions there) for each of the account's granting accesses with
    roles that grant something (inherited permissions included)."""
    target = Actor.account(account_id)
    now = utcnow()
    for access in accesses_repo.of_account(account_id):
        if not access.grants(now) or not access.roles:
            continue
        held = permissions(target, access.unit_id)
        if held:
            yield access.unit_id, held


def outranks(target_account_id: str, actor: Actor) -> bool:
    """Whether the account ``target_account_id`` holds *more rights* than ``actor``:

    - it is one of the operator's staff members (whatever its assignments), or
    - in some unit where it holds a granting access, its permissions there
      (:func:`permissions`, inherited ones included) are not a subset of the actor's
      permissions in that unit, or include ``impersonate`` (nobody acts as someone
      who could act as others in turn).

    Permissions only flow down the unit tree, so comparing at the units of the
    target's own accesses covers every unit. Cost: one :func:`permissions` pair per
    access of the target."""
    if rights_repo.staff_member(target_account_id) is not None:
        return True
    return _holds_beyond(target_account_id, actor, frozenset({"impersonate"}))


def holds_more_rights(target_account_id: str, actor: Actor) -> bool:
    """Whether the account ``target_account_id`` holds a right ``actor`` lacks,
    anywhere: in some unit of its accesses a permission the actor does not hold
    there, or it is one of the operator's staff members (only the system and an
    operator client hold more). For what acts on the whole person rather than on one
    access (a password reset replaces the one password and ends every session): a
    person's rights in other units and companies count, not only the access's."""
    if rights_repo.staff_member(target_account_id) is not None:
        return permissions(actor, None) != catalogue.ALL
    return _holds_beyond(target_account_id, actor, frozenset())


def holds_more_than_employee(target_account_id: str) -> bool:
    """Whether the account holds, in some unit of its granting accesses, a permission
    the built-in ``employee`` role does not grant there, or is one of the operator's
    staff: a person with administrative rights. What signs such a person in without a
    proof of their own (an upstream claim that an administrator configured) must not
    reach them."""
    if rights_repo.staff_member(target_account_id) is not None:
        return True
    return any(
        not held <= role_permissions(unit_id, ["employee"])
        for unit_id, held in _held_by_access(target_account_id)
    )


def require_impersonation(actor: Actor, target_account_id: str, unit_id: str) -> None:
    """Return when ``actor`` may act as the account ``target_account_id``, whose
    access is in the unit ``unit_id``: the actor is a person (account or staff), holds
    ``impersonate`` in that unit (:func:`require`: :class:`NotPermitted`, ``foreign``
    when the actor holds nothing there), is not the target, and the target does not
    hold more rights (:func:`outranks`); :class:`ImpersonationRefused` otherwise.
    Whether the target's access and account are usable is the caller's check."""
    if actor.kind not in ("account", "staff"):
        if actor.kind == "client":
            require(actor, "impersonate", unit_id)  # a unit's client: 404 outside it
        raise ImpersonationRefused(actor, unit_id, "not_a_person")
    require(actor, "impersonate", unit_id)
    if actor.account_id == target_account_id:
        raise ImpersonationRefused(actor, unit_id, "self")
    if outranks(target_account_id, actor):
        raise ImpersonationRefused(actor, unit_id, "outranks")
