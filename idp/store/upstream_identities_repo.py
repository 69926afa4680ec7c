"""Repository of upstream identities and the account changes federation makes.

Every function that writes does so in one transaction: the account, its membership,
its upstream identity and the audit event are committed together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from idp.store.db import db
from idp.store.models import (
    Access,
    Account,
    AuditEvent,
    UpstreamIdentity,
    utcnow,
)

PROFILE_COLUMNS = ("given_name", "family_name", "phone_number", "locale")  # the account's
FACT_COLUMNS = ("personnel_number", "cost_centre", "department")  # the access's


class IdentityConflict(Exception):
    """The account or upstream identity was created concurrently; retry the lookup."""


@dataclass(frozen=True)
class UpstreamKey:
    connector_id: str
    issuer: str
    subject: str


def find(key: UpstreamKey) -> UpstreamIdentity | None:
    """The identity stored under exactly (connector, issuer, subject)."""
    query = select(UpstreamIdentity).where(
        UpstreamIdentity.connector_id == key.connector_id,
        UpstreamIdentity.issuer == key.issuer,
        UpstreamIdentity.subject == key.subject,
    )
    return db.session.scalars(query).first()


def for_account(account_id: str) -> list[UpstreamIdentity]:
    query = select(UpstreamIdentity).where(UpstreamIdentity.account_id == account_id)
    return list(db.session.scalars(query.order_by(UpstreamIdentity.created_at)))


def account(account_id: str) -> Account | None:
    return db.session.get(Account, account_id)


def account_by_email(email: str) -> Account | None:
    """The account whose address equals ``email`` ignoring case."""
    query = select(Account).where(func.lower(Account.email) == email.strip().lower())
    return db.session.scalars(query).first()


def _apply_profile(
    acct: Account, unit_id: str, fields: dict[str, str], roles: list[str], owned: set[str]
) -> None:
    """Personal fields onto the account, employer facts (and unit fields) onto its
    access to the connector's unit; a new access is active with ``roles``, an existing
    one keeps its status (a suspended access stays suspended)."""
    changed = False
    for name, value in fields.items():
        if name in PROFILE_COLUMNS and getattr(acct, name) != value:
            setattr(acct, name, value)
            changed = True
    access = db.session.scalars(
        select(Access).where(Access.account_id == acct.id, Access.unit_id == unit_id)
    ).first()
    if access is None:
        access = Access(account_id=acct.id, unit_id=unit_id, roles=list(roles),
                        created_by_kind="sso", extra={}, field_owners={})
        db.session.add(access)
    else:
        kept = [r for r in access.roles or [] if r not in owned]
        new_roles = list(dict.fromkeys([*kept, *roles]))
        if new_roles != list(access.roles or []):
            access.roles = new_roles
    for name, value in fields.items():
        if name in FACT_COLUMNS:
            if getattr(access, name) != value:
                setattr(access, name, value)
                changed = True
        elif name not in PROFILE_COLUMNS and (access.extra or {}).get(name) != value:
            access.extra = {**(access.extra or {}), name: value}
            changed = True
    if changed:
        acct.version = (acct.version or 1) + 1


def create_account(
    key: UpstreamKey,
    unit_id: str,
    email: str,
    fields: dict[str, str],
    roles: list[str],
    owned_roles: set[str],
    claims: dict[str, Any],
    audit: AuditEvent,
) -> Account:
    """Just-in-time account: account, membership, identity, ``audit`` (its target set
    to the new account's id), one commit.

    Raises :class:`IdentityConflict` when a concurrent sign-in created the account
    or identity first (the unique constraints decide).
    """
    acct = Account(email=email.strip().lower(), email_verified=True)
    db.session.add(acct)
    try:
        db.session.flush()
        _apply_profile(acct, unit_id, fields, roles, owned_roles)
        db.session.add(
            UpstreamIdentity(
                connector_id=key.connector_id,
                account_id=acct.id,
                issuer=key.issuer,
                subject=key.subject,
                email=email,
                claims=claims,
                last_login_at=utcnow(),
            )
        )
        audit.target = acct.id
        db.session.add(audit)
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise IdentityConflict(str(exc.orig)[:200]) from exc
    return acct


def link(
    key: UpstreamKey,
    account_id: str,
    unit_id: str,
    email: str | None,
    fields: dict[str, str],
    roles: list[str],
    owned_roles: set[str],
    claims: dict[str, Any],
    audit: AuditEvent,
) -> Account:
    """Link an upstream identity to an existing account (after it proved control),
    with ``audit``, one commit."""
    acct = db.session.get(Account, account_id)
    if acct is None:
        raise IdentityConflict("account vanished")
    try:
        _apply_profile(acct, unit_id, fields, roles, owned_roles)
        db.session.add(
            UpstreamIdentity(
                connector_id=key.connector_id,
                account_id=acct.id,
                issuer=key.issuer,
                subject=key.subject,
                email=email,
                claims=claims,
                last_login_at=utcnow(),
            )
        )
        db.session.add(audit)
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise IdentityConflict(str(exc.orig)[:200]) from exc
    return acct


def record_sign_in(
    identity: UpstreamIdentity,
    unit_id: str,
    email: str | None,
    fields: dict[str, str],
    roles: list[str],
    owned_roles: set[str],
    claims: dict[str, Any],
) -> Account:
    """A later sign-in: update the fields and roles this source owns, one commit.

    The account's address never changes here (no mapped field is ``email``):
    ``identity.email`` only records what the upstream last asserted, so an upstream
    cannot rename an account into an address its unit does not own."""
    acct = db.session.get(Account, identity.account_id)
    if acct is None:
        raise IdentityConflict("account vanished")
    _apply_profile(acct, unit_id, fields, roles, owned_roles)
    identity.email = email
    identity.claims = claims
    identity.last_login_at = utcnow()
    db.session.commit()
    return acct

