"""The account lifecycle: the one place where accounts are created, linked to an
upstream identity, have profile fields changed, are deactivated, reactivated,
blocked, unblocked, unlocked or anonymised. Every path goes through it: the wallet
form and sign-in, SCIM (:mod:`idp.provisioning.service`), the LDAP sync
(:mod:`idp.ldap.apply`, :mod:`idp.ldap.accounts`), federation
(:mod:`idp.federation.accounts`), joins (:mod:`idp.accounts.invitations`), new
contacts (:mod:`idp.accounts.invites`) and the CLI
(``idp accounts ...``). Only this module constructs :class:`Account` (a test scans
``idp/`` for it).

Guarantees:

* **Status** is one enum, :class:`Status` (``active``, ``blocked``,
  ``deactivated``, ``deleted``). ``blocked`` is the operator's (only :func:`unblock`
  lifts it); ``deactivated`` is a provisioning source's (SCIM, LDAP), which lifts it
  itself; ``deleted`` is an anonymised tombstone. Leaving ``active`` ends every
  session and revokes every grant in the same transaction (:func:`stage_cut_access`).
* **Field ownership** (:mod:`idp.accounts.field_owners`) is enforced by the one profile-update
  function :func:`profile_changes` (staged by :func:`stage_profile`) for every writer:
  ``employee`` < ``sso`` < ``scim``/``ldap``. A writer never overwrites a field a
  higher-ranked writer owns, and becomes the owner of what it sets (``sso`` for
  federation, like SCIM and LDAP); clearing a field hands it back to the employee.
* **One audit writer**: each operation records its event through :mod:`idp.audit`
  with the structured actor, in the transaction of the change.
* **One transaction idiom**: functions named ``stage_*`` only stage (the caller's
  :func:`idp.store.unit_of_work.atomic` block commits); the others commit through
  ``atomic()`` themselves. Repositories only stage.

Independently of the status, ``IDP_LOCKOUT_FAILURES`` consecutive wrong one-time
codes soft-lock an account (:func:`idp.factors.email_otp.soft_locked`: 6-digit codes only
from browsers known for it, a 16-digit code for others) until the mailbox is proven
or :func:`unlock` clears the count; ``locked_at`` (a hard lock set by earlier
versions) is cleared by :func:`unlock` too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from idp import audit
from idp.accounts import accesses as access_facts
from idp.accounts import field_owners
from idp.accounts.accesses import granting
from idp.domains import rules as domain_rules
from idp.provisioning.errors import Busy, InvalidValue, NotFound
from idp.store import accounts_repo, grants_repo, scim_repo, unit_of_work
from idp.store import upstream_identities_repo as upstream_repo
from idp.store.models import (
    Access,
    Account,
    AccountStatus,
    UnitProfileField,
    UpstreamIdentity,
    new_id,
)
from idp.store.upstream_identities_repo import IdentityConflict, UpstreamKey

Status = AccountStatus
ACTIVE = Status.ACTIVE
BLOCKED = Status.BLOCKED
DEACTIVATED = Status.DEACTIVATED
DELETED = Status.DELETED
SSO = "sso"
MAX_EMAIL_LENGTH = 254  # RFC 5321 §4.5.3.1.3 path limit minus the angle brackets
_LOCAL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+$")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Account attributes a writer may set that no one owns (facts about the address).
UNOWNED_FIELDS = ("email_verified",)


T = TypeVar("T")

class InvalidEmail(ValueError):
    """The text is not an e-mail address we can send a code to."""


def normalise_email(raw: str) -> str:
    """The canonical form of an address: surrounding space removed, all lower case.

    Raises :class:`InvalidEmail` unless the result is ``local@domain`` with an
    RFC 5322 dot-atom local part (at most 64 characters) and a domain of at least two
    DNS labels (internationalised domains in their ``xn--`` form are accepted), at
    most 254 characters in all.
    """
    email = (raw or "").strip().lower()
    if not email or len(email) > MAX_EMAIL_LENGTH or email.count("@") != 1:
        raise InvalidEmail(raw)
    local, domain = email.split("@")
    if not local or len(local) > 64 or not _LOCAL.match(local):
        raise InvalidEmail(raw)
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidEmail(raw)
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise InvalidEmail(raw)
    if labels[-1].isdigit():
        raise InvalidEmail(raw)
    return email


class DuplicateEmail(Exception):
    """Another account already has this e-mail address (nothing was written)."""


def by_email(email: str) -> Account | None:
    """The account of a normalised address, or None."""
    return accounts_repo.by_email(email)


def get(account_id: str) -> Account | None:
    """The account with this id, or None."""
    return accounts_repo.get(account_id)


# -- creating ---------------------------------------------------------------------


def new_account(
    email: str | None,
    *,
    email_verified: bool,
    status: Status = ACTIVE,
    account_id: str | None = None,
    locale: str | None = None,
    version: int = 1,
) -> Account:
    """Stage a new account with no profile values yet (:func:`stage_profile` sets
    them with their owners). The only place that constructs :class:`Account`; the
    caller commits (and audits the creation in the same transaction)."""
    account = Account(
        id=account_id or new_id(),
        email=email,
        email_verified=email_verified,
        given_name="",
        family_name="",
        field_owners={},
        locale=locale,
        status=status,
        version=version,
    )
    accounts_repo.add(account)
    return account


def create_wallet(
    email: str, profile: dict[str, Any], locale: str | None
) -> Account:
    """Create the account of a first sign-in whose ``email`` was just proven by a code
    (so ``email_verified`` is true). ``profile`` holds ``given_name``,
    ``family_name``; employer facts in it (``cost_centre``, ``personnel_number``,
    unit fields under ``extra``) are not the account's: the caller gives them to the
    access the sign-in joins (``idp.domains.rules.apply_auto_join``).

    Raises :class:`DuplicateEmail` when the address got an account meanwhile (a
    parallel first sign-in); nothing is written then.
    """
    values: dict[str, Any] = {
        "given_name": profile["given_name"],
        "family_name": profile["family_name"],
    }
    try:
        with unit_of_work.atomic():
            account = new_account(email, email_verified=True, locale=locale)
            stage_profile(account, values, field_owners.EMPLOYEE, bump_version=False)
            audit.record(
                audit.account_actor(account.id), "account.create", account.id,
                {"via": "email-otp"},
            )
    except unit_of_work.Conflict:
        raise DuplicateEmail(email) from None
    return account


def stage_contact(
    email: str,
    given_name: str,
    family_name: str,
    phone_number: str | None,
    locale: str | None,
    actor: audit.Actor | str,
    unit_id: str,
) -> Account:
    """Stage the account of a contact an administrator adds as a new person
    (:mod:`idp.accounts.invites`): the address is not proven yet (the invitation link
    proves it), the names and mobile number are the employee's own fields (the person
    may change them), audited ``account.create`` ``via`` ``contact``. The caller
    commits, with the access, in one transaction; a concurrent account with the same
    address fails there (:class:`~idp.store.unit_of_work.Conflict`)."""
    account = new_account(email, email_verified=False, locale=locale)
    values: dict[str, Any] = {"given_name": given_name, "family_name": family_name}
    if phone_number:
        values["phone_number"] = phone_number
    stage_profile(account, values, field_owners.EMPLOYEE, bump_version=False)
    audit.record(actor, "account.create", account.id, {"via": "contact"}, unit_id=unit_id)
    return account


# -- profile fields ---------------------------------------------------------------


ProfileChange = field_owners.Change


def profile_changes(
    account: Account, changes: dict[str, Any], source: str, *, refuse: bool = True
) -> ProfileChange:
    """The one profile-update rule, for every writer (``employee``, ``sso``,
    ``ldap``, ``scim``) on the account's personal fields. ``changes`` maps a
    personal field (:data:`idp.accounts.field_owners.PERSONAL_FIELDS`) or an unowned fact
    (:data:`UNOWNED_FIELDS`) to its new value (None clears); employer facts are the
    accesses' (:func:`stage_changes` splits a mixed change).

    A field owned by a writer that ranks above ``source`` is not written:
    :class:`~idp.provisioning.errors.FieldOwned` when ``refuse``, else it is left
    alone and named in ``skipped`` (a sign-in must not fail over it); the rule itself
    is :func:`idp.accounts.field_owners.take`, shared with :func:`idp.accounts.accesses.set_facts`.
    Nothing is changed on ``account``."""
    owned = field_owners.owners(account)
    original = dict(owned)
    result = ProfileChange()
    for name, value in changes.items():
        if name in UNOWNED_FIELDS:
            if getattr(account, name) != value:
                result.values[name] = value
                result.fields.append(name)
            continue
        if name not in field_owners.PERSONAL_FIELDS:
            raise ValueError(f"{name} is no personal field (employer facts: set_facts)")
        if not field_owners.take(owned, name, value, source, refuse=refuse):
            result.skipped.append(name)
            continue
        value = field_owners.column_value(name, value)
        if getattr(account, name) != value:
            result.values[name] = value
            result.fields.append(name)
    if owned != original:
        result.values["field_owners"] = owned
    return result


def stage_profile(
    account: Account,
    changes: dict[str, Any],
    source: str,
    *,
    refuse: bool = True,
    bump_version: bool = True,
) -> ProfileChange:
    """Apply :func:`profile_changes` to ``account`` (staged; the caller commits and
    audits), bumping its version when anything changed."""
    change = profile_changes(account, changes, source, refuse=refuse)
    for name, value in change.values.items():
        setattr(account, name, value)
    if change.values and bump_version:
        account.version = (account.version or 1) + 1
    return change


def stage_changes(
    account: Account,
    unit_id: str | None,
    changes: dict[str, Any],
    source: str,
    *,
    refuse: bool = True,
    bump_version: bool = True,
    access: Access | None = None,
) -> ProfileChange:
    """The one entry point for a writer whose change mixes personal fields and
    employer facts (SCIM, LDAP, federation, joins, demo, bench): the personal fields
    go to the account (:func:`stage_profile`), the facts (``cost_centre``,
    ``personnel_number``, ``department``, ``extra.<name>``) to the account's access
    to ``unit_id`` (or ``access`` when the caller holds it, e.g. just created;
    :func:`idp.accounts.accesses.set_facts`), both under the one ownership rule. Facts
    without an access to hold them are :class:`InvalidValue` when ``refuse``, else
    left out and named in ``skipped``. Staged; the caller commits and audits."""
    personal = {k: v for k, v in changes.items() if not field_owners.is_fact(k)}
    facts = {k: v for k, v in changes.items() if field_owners.is_fact(k)}
    change = stage_profile(account, personal, source, refuse=refuse, bump_version=bump_version)
    if not facts:
        return change
    row = access
    if row is None and unit_id:
        row = access_facts.find(account.id, unit_id)
    if row is None:
        if refuse:
            raise InvalidValue("employer facts belong to an access to a unit")
        change.skipped += list(facts)
        return change
    change.add(access_facts.set_facts(row, facts, source, refuse=refuse))
    if change.fields and bump_version and not change.values:
        account.version = (account.version or 1) + 1  # the account's view changed
    return change


def _until_unchanged(write: Callable[[], T], exhausted: Exception) -> T:
    """Run ``write`` (one read-compute-write transaction) until it commits without a
    :class:`~idp.store.unit_of_work.Conflict`: the account it read was changed
    meanwhile (its version), and the rollback expired it, so the next try reads it
    again. ``exhausted`` after :func:`idp.accounts.field_owners.attempts` tries."""
    for _attempt in field_owners.attempts():
        try:
            return write()
        except unit_of_work.Conflict:
            continue
    raise exhausted


def update_wallet(
    account: Account, profile: dict[str, Any], unit_id: str | None = None
) -> Account:
    """Complete or change the wallet of an existing account: names on the account;
    ``cost_centre``/``personnel_number`` on the access to ``unit_id`` (the unit chosen
    for the sign-in, or the only one; not written when there is none); each unit field
    of ``extra`` on the accesses of the units defining it. Audited with the names of
    changed fields, in one transaction.

    Fields that an HR system or an upstream login owns (``idp.accounts.field_owners``) are
    never overwritten here: the employee's value for them is ignored.
    """
    return _until_unchanged(
        lambda: _update_wallet(account, profile, unit_id),
        Busy("the account is being changed concurrently; retry"),
    )


def _update_wallet(account: Account, profile: dict[str, Any], unit_id: str | None) -> Account:
    rows = accesses(account.id)
    target = wallet_access(rows, unit_id)
    by_unit: dict[str, list[str]] = {}
    for f in accounts_repo.profile_fields([a.unit_id for a in rows], distinct=False):
        by_unit.setdefault(f.unit_id, []).append(f.name)
    extra = profile.get("extra") or {}
    with unit_of_work.atomic():
        names: dict[str, Any] = {
            n: profile[n] or None for n in ("given_name", "family_name") if n in profile
        }
        change = stage_profile(account, names, field_owners.EMPLOYEE, refuse=False)
        for row in rows:
            wanted: dict[str, str | None] = {}
            if row is target:
                wanted.update({n: profile[n] or None for n in field_owners.FACT_FIELDS
                               if n in profile})
            wanted.update({field_owners.EXTRA_PREFIX + n: extra[n] or None
                           for n in by_unit.get(row.unit_id, []) if n in extra})
            change.add(access_facts.set_facts(row, wanted, field_owners.EMPLOYEE, refuse=False))
        if not change.fields:
            return account
        audit.record(
            audit.account_actor(account.id), "account.profile", account.id,
            {"fields": sorted({f.split(".")[0] for f in change.fields})},
        )
    return account


class _Retry(Exception):
    pass


def employee_update(
    account_id: str,
    changes: dict[str, str | None],
    actor: audit.Actor | str,
    unit_id: str | None = None,
) -> Account:
    """Apply an employee's own profile edit (the dashboard): personal fields to the
    account, employer facts to the account's access to ``unit_id``; computed from a
    fresh read and written only if the account's version is unchanged (else
    retried). :class:`FieldOwned` names the first field that HR or SSO owns, and
    nothing is written then; :class:`InvalidValue` for a value or field that cannot
    be edited (a fact without an access to ``unit_id``)."""
    for _attempt in field_owners.attempts():
        account = scim_repo.account(account_id)
        if account is None or account.status == DELETED:
            raise NotFound("account not found")
        access = access_facts.find(account_id, unit_id) if unit_id else None
        profile: dict[str, Any] = {}
        facts: dict[str, Any] = {}
        for name, value in changes.items():
            value = field_owners.checked(name, value, field_owners.limit(name))
            if field_owners.is_fact(name):
                if access is None:
                    raise InvalidValue(f"{name} belongs to a unit's access")
                facts[name] = value
            elif name in field_owners.PERSONAL_FIELDS and name != "email":
                profile[name] = value
            else:
                raise InvalidValue(f"{name} cannot be edited here")
        change = profile_changes(account, profile, field_owners.EMPLOYEE)
        try:
            with unit_of_work.atomic():
                if access is not None and facts:
                    fact_change = access_facts.set_facts(access, facts, field_owners.EMPLOYEE)
                else:
                    fact_change = ProfileChange()
                if not change.values and not fact_change.fields:
                    return account
                if not scim_repo.bump_account(account_id, account.version, change.values):
                    raise _Retry()
                audit.record(actor, "account.profile_edited", account_id,
                             {"fields": sorted(changes),
                              **({"unit_id": unit_id} if facts else {})})
        except _Retry:
            continue
        return scim_repo.account(account_id) or account
    raise Busy("the account is being changed concurrently; retry")


def confirm_address(account: Account) -> Account:
    """Mark ``account``'s address verified (audited) when it is not yet: the caller
    has just redeemed a code sent to exactly that address. Another writer changing
    the account meanwhile (its version) only makes it read the account again."""
    def write() -> Account:
        if account.email_verified:
            return account
        with unit_of_work.atomic():
            stage_profile(account, {"email_verified": True}, field_owners.EMPLOYEE)
            audit.record(
                audit.account_actor(account.id), "account.email_verified", account.id,
                {"via": "email-otp"},
            )
        return account

    return _until_unchanged(write, Busy("the account is being changed concurrently; retry"))


def take_joined_values(
    placeholder: Account, account: Account, unit_id: str, source: str
) -> list[str]:
    """Stage a join (:mod:`idp.accounts.invitations`): the personal values ``source`` owns
    on the pending record's ``placeholder`` move to the holder's ``account`` with
    their ownership (through :func:`stage_profile`, so the holder's fields another
    directory owns are refused); the placeholder's access to ``unit_id`` and the
    facts ``source`` owns on it move to the holder's access
    (:func:`idp.accounts.accesses.move`). Returns the names of the personal fields taken."""
    values: dict[str, Any] = {
        key: getattr(placeholder, key)
        for key, owner in field_owners.owners(placeholder).items()
        if owner == source and key in field_owners.PERSONAL_FIELDS and key != "email"
    }
    stage_profile(account, values, source, bump_version=False)
    account.version = (account.version or 0) + 1
    access_facts.move(placeholder.id, account.id, unit_id, source)
    return sorted(values)


def wallet_access(rows: list[Any], unit_id: str | None) -> Any:
    """Of the account's granting accesses ``rows``, the one whose facts the wallet
    shows and edits: the unit chosen for the sign-in, else the only one (None when
    there are several and none is chosen, or none)."""
    if unit_id:
        return next((a for a in rows if a.unit_id == unit_id), None)
    return rows[0] if len(rows) == 1 else None


def accesses(account_id: str) -> list[Any]:
    """The account's granting accesses (active, not ended; ``idp.accounts.accesses``) with
    units loaded, sorted by unit name: the units a sign-in can be for."""
    return granting(accounts_repo.accesses(account_id))


def unit_fields(
    account_id: str, account_memberships: list[Any] | None = None
) -> list[UnitProfileField]:
    """The extra wallet fields the account's units define; ``account_memberships``
    when the caller has just loaded them (saves reading them again)."""
    if account_memberships is None:
        account_memberships = accesses(account_id)
    return accounts_repo.profile_fields(m.unit_id for m in account_memberships)


def joins_unit(email: str) -> bool:
    """Whether a first sign-in with ``email`` joins a unit by its domain rules."""
    return domain_rules.membership_for_email(email) is not None


def unit_fields_for_new_wallet(email: str) -> list[UnitProfileField]:
    """The extra wallet fields of the unit a first sign-in with ``email`` will join by
    its domain rules (auto-join on a verified domain), so the first wallet form asks
    for them at once instead of a second form right after."""
    joined = domain_rules.membership_for_email(email)
    return accounts_repo.profile_fields([joined[0]]) if joined else []


def profile_complete(account: Account, account_memberships: list[Any] | None = None) -> bool:
    """True when the wallet has the minimum data: given and family name and every
    field its units mark required that the employee sets. ``account_memberships``: the account's
    memberships when the caller has just loaded them (saves reading them again)."""
    if not account.given_name or not account.family_name:
        return False
    rows = accesses(account.id) if account_memberships is None else account_memberships
    extras = {a.unit_id: a.extra or {} for a in rows}
    fields = accounts_repo.profile_fields(list(extras), distinct=False)
    # a field the company sets is not the employee's to complete
    return all(extras[f.unit_id].get(f.name) for f in fields
               if f.required and (f.set_by or "employee") == "employee")


# -- status -----------------------------------------------------------------------


def stage_cut_access(
    account_id: str,
    actor: audit.Actor | str,
    action: str,
    details: dict[str, Any] | None = None,
    unit_id: str | None = None,
) -> dict[str, Any]:
    """Stage the end of everything an account holds: every session ended, every
    grant revoked (refresh tokens stop, introspection says inactive), audited as
    ``action`` with the counts. Returns the event's details. The sessions' relying
    parties get back-channel logouts (staged with the rest)."""
    from idp.interaction import rp_logout  # interaction imports this module

    ended = rp_logout.stage_end_sessions(account_id)
    revoked = grants_repo.revoke_for_account(account_id)
    facts = {**(details or {}), "sessions_ended": ended, "grants_revoked": revoked}
    audit.record(actor, action, account_id, facts, unit_id=unit_id)
    return facts


def stage_deactivate(
    account: Account, actor: audit.Actor | str, unit_id: str, reason: str | None = None
) -> None:
    """Stage a provisioning source's deactivation of ``account`` (status
    ``deactivated``, sessions and grants ended), audited ``account.deactivated``."""
    account.status = DEACTIVATED
    account.version = (account.version or 1) + 1
    stage_cut_access(
        account.id, actor, "account.deactivated",
        {"reason": reason} if reason is not None else {"unit_id": unit_id}, unit_id,
    )


def stage_reactivate(account: Account, actor: audit.Actor | str, unit_id: str) -> None:
    """Stage a provisioning source's reactivation (status ``active``), audited."""
    account.status = ACTIVE
    account.version = (account.version or 1) + 1
    audit.record(actor, "account.reactivated", account.id, {"unit_id": unit_id}, unit_id=unit_id)


def provisioned_status(account: Account, active: bool) -> Status:
    """The status a provisioning source (SCIM ``active``) gives ``account``:
    ``active`` or ``deactivated``, except that an account the operator blocked, or a
    deleted tombstone, keeps its status (only :func:`unblock` lifts a block)."""
    if account.status in (BLOCKED, DELETED):
        return Status(account.status)
    return ACTIVE if active else DEACTIVATED


def anonymised_values(account_id: str) -> dict[str, Any]:
    """The column values of a deprovisioned account: every personal value gone,
    status ``deleted``; the row stays as a tombstone so audit events and sign-in
    history remain attributable (retention rule in ``docs/scim.md``). The employer
    facts are on the accesses, which deprovisioning deletes with the account's
    memberships (``scim_repo.forget_account``), facts and their owners with them."""
    return {
        "email": f"deleted-{account_id}@deleted.invalid",
        "email_verified": False,
        "given_name": "",
        "family_name": "",
        "phone_number": None,
        "locale": None,
        "field_owners": {},
        "status": DELETED,
    }


def record_code_failure(account_id: str) -> int:
    """Count one more consecutive wrong code (one atomic ``UPDATE``; none for an
    unknown id); the new count."""
    with unit_of_work.atomic():
        return accounts_repo.record_code_failure(account_id)


def reset_code_failures(account_id: str) -> None:
    """Start counting consecutive wrong codes from zero again (after a good code)."""
    with unit_of_work.atomic():
        accounts_repo.reset_code_failures(account_id)


def unlock(email: str, actor: audit.Actor | str | None = None) -> bool:
    """Lift the lock-out of ``email`` after too many wrong codes: clears the failure
    count (ending a soft lock) and ``locked_at`` (a hard lock of an earlier version),
    audited. False when there is no such account."""
    account = _find(email)
    if account is None:
        return False
    with unit_of_work.atomic():
        accounts_repo.unlock(account.id)
        audit.record(
            actor or audit.Actor.operator(), "account.unlock", account.id,
            {"failed_code_attempts": account.failed_code_attempts},
        )
    return True


def block(email: str, actor: audit.Actor | str | None = None) -> bool:
    """Block ``email``: no sign-in from now on, every session ended (what
    :func:`idp.interaction.sessions.end_all_for_account` does) and every grant revoked (so refresh
    tokens stop and access tokens fail introspection), all in one transaction with
    its audit event. False when there is no such account."""
    account = _find(email)
    if account is None:
        return False
    with unit_of_work.atomic():
        accounts_repo.set_status(account.id, BLOCKED)
        stage_cut_access(account.id, actor or audit.Actor.operator(), "account.block")
    return True


def unblock(email: str, actor: audit.Actor | str | None = None) -> bool:
    """Let an account blocked by :func:`block` sign in again. An account deactivated
    by a directory or SCIM stays as it is (its source decides). False when there is
    no such account."""
    account = _find(email)
    if account is None:
        return False
    if account.status == BLOCKED:
        with unit_of_work.atomic():
            accounts_repo.set_status(account.id, ACTIVE)
            audit.record(actor or audit.Actor.operator(), "account.unblock", account.id, {})
    return True


# -- federation -------------------------------------------------------------------


@dataclass(frozen=True)
class UpstreamProfile:
    """What an upstream sign-in asserts, mapped (``connectors.mapping``): profile
    ``fields`` (a name outside the account's columns is a unit field), the unit's
    ``roles`` it grants and the roles it ``owned_roles`` (may take away), and the
    ``claims`` stored with the identity."""

    fields: dict[str, str]
    roles: list[str]
    owned_roles: set[str]
    claims: dict[str, Any]


def _sso_changes(fields: dict[str, str]) -> dict[str, Any]:
    """A connector's mapped fields as profile changes: personal columns as they are,
    employer facts (``cost_centre``, ...) as they are, any other name a unit field."""
    return {
        name if name in upstream_repo.PROFILE_COLUMNS or name in field_owners.FACT_FIELDS
        else field_owners.EXTRA_PREFIX + name: value
        for name, value in fields.items()
    }


def _stage_upstream_profile(
    account: Account, unit_id: str, profile: UpstreamProfile, actor: audit.Actor
) -> ProfileChange:
    """Federation's profile write: the access to the connector's unit with the roles
    the connector maps (:func:`idp.accounts.accesses.stage_upstream_roles`), then through
    :func:`stage_changes` the personal fields onto the account and the employer
    facts onto that access, only those no higher-ranked writer (SCIM, LDAP) owns;
    what it sets becomes ``sso``-owned."""
    access = access_facts.stage_upstream_roles(
        account.id, unit_id, profile.roles, profile.owned_roles, actor
    )
    return stage_changes(
        account, unit_id, _sso_changes(profile.fields), SSO, refuse=False, access=access
    )


def create_from_upstream(
    key: UpstreamKey, unit_id: str, email: str, profile: UpstreamProfile, actor: audit.Actor
) -> Account:
    """Just-in-time account of a federated sign-in: account, membership, identity
    and its audit event, one transaction. The caller has checked that the unit owns
    the address (:func:`idp.provisioning.ownership.standing`). :class:`IdentityConflict` when a
    concurrent sign-in created the account or identity first."""
    try:
        with unit_of_work.atomic():
            account = new_account(email.strip().lower(), email_verified=True)
            upstream_repo.flush()
            change = _stage_upstream_profile(account, unit_id, profile, actor)
            upstream_repo.stage_identity(key, account.id, email, profile.claims)
            audit.record(
                actor, "federation.account_created", account.id,
                {"issuer": key.issuer, "subject": key.subject, "fields": sorted(change.fields)},
                unit_id=unit_id,
            )
    except unit_of_work.Conflict as exc:
        raise IdentityConflict(str(exc)) from None
    return account


def link_upstream(
    key: UpstreamKey, account_id: str, unit_id: str, email: str | None,
    profile: UpstreamProfile, actor: audit.Actor, proof: str = "email_code",
) -> Account:
    """Link an upstream identity to an existing account, with the profile fields
    federation may write; audited, one transaction, written only if the account is
    still as read (else read again and recomputed; :class:`IdentityConflict` when the
    identity was linked meanwhile).

    ``proof`` says why the link is right: ``email_code`` (the account just proved
    control of the address), ``scim_external_id`` (the connector's claim equals the
    externalId the unit's SCIM gave the account) or ``administrator`` (the unit's
    administrator linked it). The last two are only for an account without an
    address; checked again here, inside the transaction, so an address SCIM set
    meanwhile refuses the link (:class:`IdentityConflict`)."""
    def write() -> Account:
        try:
            with unit_of_work.atomic():
                account = accounts_repo.get(account_id)
                if account is None:
                    raise IdentityConflict("account vanished")
                if proof != "email_code" and account.email is not None:
                    raise IdentityConflict("the account has an address now")
                change = _stage_upstream_profile(account, unit_id, profile, actor)
                upstream_repo.stage_identity(key, account.id, email, profile.claims)
                audit.record(
                    actor, "federation.identity_linked", account.id,
                    {"issuer": key.issuer, "subject": key.subject, "proof": proof,
                     "fields": sorted(change.fields),
                     "fields_owned_elsewhere": sorted(change.skipped)},
                    unit_id=unit_id,
                )
            return account
        except unit_of_work.Conflict as exc:
            if upstream_repo.find(key) is not None:  # linked meanwhile: no retry
                raise IdentityConflict(str(exc)) from None
            raise

    return _until_unchanged(
        write, IdentityConflict("the account is being changed concurrently")
    )


def unlink_upstream(identity: UpstreamIdentity, unit_id: str, actor: audit.Actor) -> None:
    """Remove an upstream identity from its account (the account stays; the identity
    no longer signs it in); audited, one transaction."""
    with unit_of_work.atomic():
        upstream_repo.stage_unlink(identity)
        audit.record(
            actor, "federation.identity_unlinked", identity.account_id,
            {"connector_id": identity.connector_id, "issuer": identity.issuer,
             "subject": identity.subject},
            unit_id=unit_id,
        )


def upstream_sign_in(
    identity: UpstreamIdentity, unit_id: str, email: str | None, profile: UpstreamProfile,
    actor: audit.Actor,
) -> Account:
    """A later sign-in of a known upstream identity: update the fields federation
    may write and the roles it owns, one transaction (audited when a field changed).

    The account's address never changes here: ``identity.email`` only records what
    the upstream last asserted, so an upstream cannot rename an account into an
    address its unit does not own.

    Written only if the account is still as read (its version): when SCIM, LDAP or
    another sign-in changed it meanwhile, the sign-in reads it again and recomputes,
    so it never overwrites what a higher-ranked writer has just set."""
    def write() -> Account:
        with unit_of_work.atomic():
            account = accounts_repo.get(identity.account_id)
            if account is None:
                raise IdentityConflict("account vanished")
            change = _stage_upstream_profile(account, unit_id, profile, actor)
            upstream_repo.stage_sign_in(identity, email, profile.claims)
            if change.fields:
                audit.record(
                    actor, "account.updated", account.id,
                    {"fields": sorted(change.fields)}, unit_id=unit_id,
                )
        return account

    return _until_unchanged(
        write, IdentityConflict("the account is being changed concurrently")
    )


def _find(email: str) -> Account | None:
    try:
        return accounts_repo.by_email(normalise_email(email))
    except InvalidEmail:
        return None
