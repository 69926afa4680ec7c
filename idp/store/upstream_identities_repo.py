"""Repository of upstream identities: queries, and staging of the identity rows
federation writes (the access and its roles are :mod:`idp.accounts.accesses`'). Nothing here
commits or creates an account: :mod:`idp.accounts.lifecycle` (the lifecycle) does, in one
transaction with its audit event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from idp.store.db import db
from idp.store.models import (
    Account,
    UpstreamIdentity,
    utcnow,
)

PROFILE_COLUMNS = ("given_name", "family_name", "phone_number", "locale")  # the account's
FACT_COLUMNS = ("personnel_number", "cost_centre", "department")  # the access's


class IdentityConflict(Exception):
    """The account or upstream identity was created concurrently (or the account
    vanished); retry the lookup."""


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


def flush() -> None:
    """Send staged rows to the database (a new account gets its row before rows
    that refer to it)."""
    db.session.flush()


def stage_identity(
    key: UpstreamKey, account_id: str, email: str | None, claims: dict[str, Any]
) -> UpstreamIdentity:
    """Stage a new upstream identity of ``account_id`` (its first sign-in now)."""
    row = UpstreamIdentity(
        connector_id=key.connector_id,
        account_id=account_id,
        issuer=key.issuer,
        subject=key.subject,
        email=email,
        claims=claims,
        last_login_at=utcnow(),
    )
    db.session.add(row)
    return row


def stage_sign_in(identity: UpstreamIdentity, email: str | None, claims: dict[str, Any]) -> None:
    """Stage what a later sign-in of ``identity`` records: the address and claims the
    upstream asserted now, the time."""
    identity.email = email
    identity.claims = claims
    identity.last_login_at = utcnow()
