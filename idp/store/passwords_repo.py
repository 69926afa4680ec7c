"""Repository of password credentials and the units' ``passwords_allowed`` policy
(:mod:`idp.factors.passwords`). Writes are only staged; the caller commits them."""

from __future__ import annotations

from sqlalchemy import bindparam, exists, or_, select

from idp.store.db import db
from idp.store.models import (
    UNIT_BLOCKED,
    Access,
    AccessStatus,
    AuditEvent,
    PasswordCredential,
    Unit,
    utcnow,
)


def get(account_id: str) -> PasswordCredential | None:
    """The account's password credential, None when it has no password."""
    return db.session.get(PasswordCredential, account_id)


def stage_set(account_id: str, hashed: str, status: str, by: str) -> PasswordCredential:
    """Stage the account's password hash and status (a new row or the existing one)."""
    row = db.session.get(PasswordCredential, account_id)
    if row is None:
        row = PasswordCredential(account_id=account_id)
        db.session.add(row)
    row.hash = hashed
    row.status = status
    row.updated_at = utcnow()
    row.updated_by = by[:200]
    return row


def stage_rehash(row: PasswordCredential, hashed: str) -> None:
    """Stage a new hash of the same password (other parameters); status unchanged."""
    row.hash = hashed


def allowed_for(account_id: str) -> bool:
    """One query: the account holds an access that grants (active, platform access,
    not ended, unit not blocked) in a unit whose policy allows passwords."""
    return bool(db.session.scalar(_ALLOWED, {"account_id": account_id, "now": utcnow()}))


_ALLOWED = select(
    exists()
    .where(Access.account_id == bindparam("account_id"))
    .where(Access.status == AccessStatus.ACTIVE, Access.platform_access.is_not(False))
    .where(or_(Access.ends_at.is_(None), Access.ends_at > bindparam("now")))
    .where(Access.unit_id == Unit.id, Unit.passwords_allowed.is_(True),
           Unit.status != UNIT_BLOCKED)
)


def any_unit_allows() -> bool:
    """True when some unit allows passwords (the e-mail page then links the password
    page)."""
    return bool(db.session.scalar(select(exists().where(Unit.passwords_allowed.is_(True)))))


def set_unit_policy(unit: Unit, value: bool, audit: AuditEvent) -> None:
    """Stage the unit's ``passwords_allowed`` with ``audit``."""
    unit.passwords_allowed = value
    db.session.add(audit)
