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
    ``family_name``, optional ``cost_centre``/``personnel_number`` and ``extra``.

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
        cost_centre=profile.get("cost_centre") or None,
        personnel_number=profile.get("personnel_number") or None,
        extra=dict(profile.get("extra") or {}),
        locale=locale,
        status=ACTIVE,
    )
    return accounts_repo.create(
        account,
        audit.event(
            audit.account_actor(account_id), "account.create", account_id, {"via": "email-otp"}
        ),
    )


def update_wallet(account: Account, profile: dict[str, Any]) -> Account:
    """Complete or change the wallet of an existing account (names, optional fields,
    unit fields merged into ``extra``), audited with the names of changed fields.

    Fields that an HR system or an upstream login owns (``idp.field_owners``) are
    never overwritten here: the employee's value for them is ignored.
    """
    owned = field_owners.owners(account)

    def editable(name: str) -> bool:
        return field_owners.may_write(field_owners.EMPLOYEE, owned.get(name))

    changes: dict[str, Any] = {}
    for name in ("given_name", "family_name", "cost_centre", "personnel_number"):
        if name in profile and editable(name):
            value = profile[name] or (None if name in ("cost_centre", "personnel_number") else "")
            if getattr(account, name) != value:
                changes[name] = value
    extra = dict(account.extra or {})
    for name, value in (profile.get("extra") or {}).items():
        if not editable(field_owners.EXTRA_PREFIX + name):
            continue
        if extra.get(name) != value:
            extra[name] = value
            changes.setdefault("extra", extra)
    if not changes:
        return account
    return accounts_repo.update_profile(
        account,
        changes,
        audit.event(
            audit.account_actor(account.id),
            "account.profile",
            account.id,
            {"fields": sorted(changes)},
        ),
    )


def memberships(account_id: str) -> list[Any]:
    """The account's memberships with units loaded, sorted by unit name."""
    return accounts_repo.memberships(account_id)


def unit_fields(
    account_id: str, account_memberships: list[Any] | None = None
) -> list[UnitProfileField]:
    """The extra wallet fields the account's units define; ``account_memberships``
    when the caller has just loaded them (saves reading them again)."""
    if account_memberships is None:
        account_memberships = accounts_repo.memberships(account_id)
    return accounts_repo.profile_fields(m.unit_id for m in account_memberships)


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
    extra = account.extra or {}
    fields = unit_fields(account.id, account_memberships)
    return all(extra.get(f.name) for f in fields if f.required)


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
    revoked = grants_repo.revoke_for_account(account.id)
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
