"""Accounts: e-mail normalisation, the corporate wallet, and the administrator's
levers (``unlock``, ``block``, ``unblock``; the CLI is ``idp accounts ...``).

Status values: ``active`` (may sign in), ``blocked`` (by an administrator; only
:func:`unblock` lifts it) and ``deactivated`` (by a directory sync or SCIM, which
lift it themselves). Independently, ``IDP_LOCKOUT_FAILURES`` consecutive wrong
one-time codes soft-lock an account (:func:`idp.email_otp.soft_locked`: 6-digit codes
only from browsers known for it, a 16-digit code for others) until the mailbox is
proven or :func:`unlock` clears the count; ``locked_at`` (a hard lock set by earlier
versions) is cleared by :func:`unlock` too.
"""

from __future__ import annotations

import re
from typing import Any

from idp import audit, domain_rules, field_owners
from idp.accesses import granting, set_facts
from idp.store import accounts_repo, grants_repo, sessions_repo
from idp.store.models import Account, UnitProfileField, new_id

ACTIVE = "active"
BLOCKED = "blocked"
MAX_EMAIL_LENGTH = 254  # RFC 5321 §4.5.3.1.3 path limit minus the angle brackets
_LOCAL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+$")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


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


def by_email(email: str) -> Account | None:
    """The account of a normalised address, or None."""
    return accounts_repo.by_email(email)


def get(account_id: str) -> Account | None:
    """The account with this id, or None."""
    return accounts_repo.get(account_id)


def create_wallet(
    email: str, profile: dict[str, Any], locale: str | None
) -> Account:
    """Create the account of a first sign-in whose ``email`` was just proven by a code
    (so ``email_verified`` is true). ``profile`` holds ``given_name``,
    ``family_name`` (employer facts in it are not the account's: the caller gives
    them to the access the sign-in joins, ``idp.domain_rules.apply_auto_join``).

    Raises :class:`idp.store.accounts_repo.DuplicateEmail` when the address got an
    account meanwhile (a parallel first sign-in); nothing is written then.
    """
    account_id = new_id()
    account = Account(
        id=account_id,
        email=email,
        email_verified=True,
        given_name=profile["given_name"],
        family_name=profile["family_name"],
        locale=locale,
        status=ACTIVE,
    )
    return accounts_repo.create(
        account,
        audit.event(
            audit.account_actor(account_id), "account.create", account_id, {"via": "email-otp"}
        ),
    )


def update_wallet(
    account: Account, profile: dict[str, Any], unit_id: str | None = None
) -> Account:
    """Complete or change the wallet of an existing account: names on the account;
    ``cost_centre``/``personnel_number`` on the access to ``unit_id`` (the unit chosen
    for the sign-in, or the only one; not written when there is none); each unit field
    of ``extra`` on the accesses of the units defining it. Audited with the names of
    changed fields, in one transaction.

    Fields that an HR system or an upstream login owns (``idp.field_owners``) are
    never overwritten here: the employee's value for them is ignored.
    """
    owned = field_owners.owners(account)
    changes: dict[str, Any] = {}
    for name in ("given_name", "family_name"):
        if name in profile and field_owners.may_write(field_owners.EMPLOYEE, owned.get(name)):
            value = profile[name] or ""
            if getattr(account, name) != value:
                changes[name] = value
    rows = accesses(account.id)
    target = wallet_access(rows, unit_id)
    changed_facts: list[str] = []
    by_unit: dict[str, list[str]] = {}
    for f in accounts_repo.profile_fields([a.unit_id for a in rows], distinct=False):
        by_unit.setdefault(f.unit_id, []).append(f.name)
    for row in rows:
        wanted: dict[str, str | None] = {}
        if row is target:
            wanted.update({n: profile[n] or None for n in field_owners.FACT_FIELDS
                           if n in profile})
        extra = profile.get("extra") or {}
        wanted.update({field_owners.EXTRA_PREFIX + n: extra[n] or None
                       for n in by_unit.get(row.unit_id, []) if n in extra})
        theirs = field_owners.owners(row)
        editable = {k: v for k, v in wanted.items()
                    if field_owners.may_write(field_owners.EMPLOYEE, theirs.get(k))}
        changed_facts += set_facts(row, editable, field_owners.EMPLOYEE)
    if not changes and not changed_facts:
        return account
    return accounts_repo.update_profile(
        account,
        changes,
        audit.event(
            audit.account_actor(account.id),
            "account.profile",
            account.id,
            {"fields": sorted({*changes, *changed_facts})},
        ),
    )


def wallet_access(rows: list[Any], unit_id: str | None) -> Any:
    """Of the account's granting accesses ``rows``, the one whose facts the wallet
    shows and edits: the unit chosen for the sign-in, else the only one (None when
    there are several and none is chosen, or none)."""
    if unit_id:
        return next((a for a in rows if a.unit_id == unit_id), None)
    return rows[0] if len(rows) == 1 else None


def accesses(account_id: str) -> list[Any]:
    """The account's granting accesses (active, not ended; ``idp.accesses``) with
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
    field its units mark required. ``account_memberships``: the account's
    memberships when the caller has just loaded them (saves reading them again)."""
    if not account.given_name or not account.family_name:
        return False
    rows = accesses(account.id) if account_memberships is None else account_memberships
    extras = {a.unit_id: a.extra or {} for a in rows}
    fields = accounts_repo.profile_fields(list(extras), distinct=False)
    return all(extras[f.unit_id].get(f.name) for f in fields if f.required)


def unlock(email: str, actor: str = "admin") -> bool:
    """Lift the lock-out of ``email`` after too many wrong codes: clears the failure
    count (ending a soft lock) and ``locked_at`` (a hard lock of an earlier version),
    audited. False when there is no such account."""
    account = _find(email)
    if account is None:
        return False
    accounts_repo.unlock(
        account.id,
        audit.event(
            actor,
            "account.unlock",
            account.id,
            {"failed_code_attempts": account.failed_code_attempts},
        ),
    )
    return True


def block(email: str, actor: str = "admin") -> bool:
    """Block ``email``: no sign-in from now on, every session ended (what
    :func:`idp.sessions.end_all_for_account` does) and every grant revoked (so refresh
    tokens stop and access tokens fail introspection), all in one transaction with
    its audit event. False when there is no such account."""
    account = _find(email)
    if account is None:
        return False
    accounts_repo.set_status(account.id, BLOCKED)
    ended = sessions_repo.remove_for_account(account.id, commit=False)
    revoked = grants_repo.revoke_for_account(account.id, commit=False)
    accounts_repo.stage(
        audit.event(
            actor,
            "account.block",
            account.id,
            {"sessions_ended": ended, "grants_revoked": revoked},
        )
    )
    accounts_repo.commit()
    return True


def unblock(email: str, actor: str = "admin") -> bool:
    """Let an account blocked by :func:`block` sign in again. An account deactivated
    by a directory or SCIM stays as it is (its source decides). False when there is
    no such account."""
    account = _find(email)
    if account is None:
        return False
    if account.status == BLOCKED:
        accounts_repo.set_status(account.id, ACTIVE)
        accounts_repo.stage(audit.event(actor, "account.unblock", account.id, {}))
        accounts_repo.commit()
    return True


def _find(email: str) -> Account | None:
    try:
        return accounts_repo.by_email(normalise_email(email))
    except InvalidEmail:
        return None
