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
    ScimUser,
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


def scim_records_by_external_id(unit_id: str, external_id: str) -> list[ScimUser]:
    """The SCIM records of exactly ``unit_id`` whose ``externalId`` is ``external_id``
    (compared exactly, as SCIM's ``externalId`` is case-exact), with their accounts;
    at most two (more than one is ambiguous to the caller anyway)."""
    query = (
        select(ScimUser)
        .where(ScimUser.unit_id == unit_id, ScimUser.external_id == external_id)
        .order_by(ScimUser.account_id)
        .limit(2)
    )
    return list(db.session.scalars(query))


def scim_record(unit_id: str, ref: str) -> ScimUser | None:
    """The SCIM record of exactly ``unit_id`` whose account id, SCIM ``id`` or
    ``userName`` (case-insensitive) is ``ref``."""
    query = select(ScimUser).where(
        ScimUser.unit_id == unit_id,
        (ScimUser.account_id == ref)
        | (ScimUser.scim_id == ref)
        | (ScimUser.user_name_key == ref.strip().lower()),
    )
    return db.session.scalars(query.order_by(ScimUser.account_id).limit(1)).first()


def of_connector(connector_id: str, account_id: str | None = None, after_id: str | None = None,
                 limit: int | None = None) -> list[UpstreamIdentity]:
    """The identities linked through ``connector_id`` (of one account), by id, after
    ``after_id`` (keyset paging), at most ``limit``."""
    query = select(UpstreamIdentity).where(UpstreamIdentity.connector_id == connector_id)
    if account_id is not None:
        query = query.where(UpstreamIdentity.account_id == account_id)
    if after_id is not None:
        query = query.where(UpstreamIdentity.id > after_id)
    query = query.order_by(UpstreamIdentity.id)
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def by_id(identity_id: str) -> UpstreamIdentity | None:
    return db.session.get(UpstreamIdentity, identity_id)


def stage_unlink(identity: UpstreamIdentity) -> None:
    """Stage the removal of an upstream identity (the account stays)."""
    db.session.delete(identity)
