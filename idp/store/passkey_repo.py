"""Repository of passkeys (``passkey_credentials``), the accounts' WebAuthn user
handles (``passkey_handles``) and the units' ``passkey_counts_as_fresh`` policy.

Every write here is only staged and committed by its caller
(:func:`idp.store.unit_of_work.atomic`). The use of a passkey is a conditional
``UPDATE ... WHERE sign_count = :seen`` (:func:`stage_use`): of two parallel
assertions that saw the same counter at most one changes the row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update

from idp.store.db import db, rowcount
from idp.store.models import Access, AuditEvent, PasskeyCredential, PasskeyHandle, Unit

MAX_PER_ACCOUNT = 20


def handle_of(account_id: str) -> str | None:
    """The account's user handle, or None when it has none yet."""
    return db.session.scalar(
        select(PasskeyHandle.handle).where(PasskeyHandle.account_id == account_id)
    )


def account_of_handle(handle: str) -> str | None:
    """The account id whose user handle is ``handle``, or None."""
    return db.session.scalar(
        select(PasskeyHandle.account_id).where(PasskeyHandle.handle == handle)
    )


def stage_handle(account_id: str, handle: str) -> None:
    """Stage the account's user handle (the commit raises Conflict on a race)."""
    db.session.add(PasskeyHandle(account_id=account_id, handle=handle))


def for_account(account_id: str) -> list[PasskeyCredential]:
    """The account's passkeys, oldest first (at most :data:`MAX_PER_ACCOUNT`)."""
    return list(db.session.scalars(
        select(PasskeyCredential)
        .where(PasskeyCredential.account_id == account_id)
        .order_by(PasskeyCredential.created_at, PasskeyCredential.id)
        .limit(MAX_PER_ACCOUNT)
    ))


def count_for_account(account_id: str) -> int:
    return len(for_account(account_id))


def by_credential_id(credential_id: str) -> PasskeyCredential | None:
    """The passkey with the WebAuthn credential id ``credential_id`` (base64url)."""
    return db.session.scalars(
        select(PasskeyCredential).where(PasskeyCredential.credential_id == credential_id)
    ).first()


def stage_new(row: PasskeyCredential, audit: AuditEvent) -> None:
    """Stage a new passkey with ``audit`` (a duplicate credential id: Conflict)."""
    db.session.add(row)
    db.session.add(audit)


def stage_use(row: PasskeyCredential, seen: int, new_count: int, backup_state: bool,
              when: datetime, audit: AuditEvent) -> bool:
    """Stage the use of ``row``: counter ``seen`` → ``new_count``, the backup state and
    the time, only while the stored counter is still ``seen``; True when it matched
    (``audit`` is then staged too)."""
    result = db.session.execute(
        update(PasskeyCredential)
        .where(PasskeyCredential.id == row.id, PasskeyCredential.sign_count == seen)
        .values(sign_count=new_count, backup_state=backup_state, last_used_at=when)
        .execution_options(synchronize_session=False)
    )
    won = rowcount(result) == 1
    if won:
        db.session.add(audit)
    return won


def stage_rename(account_id: str, passkey_id: str, name: str) -> bool:
    """Stage the new name of the account's passkey; False when it has none such."""
    result = db.session.execute(
        update(PasskeyCredential)
        .where(PasskeyCredential.id == passkey_id, PasskeyCredential.account_id == account_id)
        .values(name=name)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def stage_remove(account_id: str, passkey_id: str, audit: AuditEvent) -> bool:
    """Stage the deletion of the account's passkey with ``audit``; False (nothing
    staged) when it has none such."""
    result = db.session.execute(
        delete(PasskeyCredential).where(
            PasskeyCredential.id == passkey_id, PasskeyCredential.account_id == account_id
        )
    )
    removed = rowcount(result) == 1
    if removed:
        db.session.add(audit)
    return removed


def stage_audit(audit: AuditEvent) -> None:
    db.session.add(audit)


def fresh_units_refusing_passkeys(account_id: str) -> list[str]:
    """Names of the account's units with ``fresh_code_every_sign_in`` that do not let a
    passkey count as the fresh code."""
    return list(db.session.scalars(
        select(Unit.name)
        .join(Access, Access.unit_id == Unit.id)
        .where(
            Access.account_id == account_id,
            Unit.fresh_code_every_sign_in.is_(True),
            Unit.passkey_counts_as_fresh.is_(False),
        )
        .order_by(Unit.name)
    ))


def set_unit_policy(unit: Unit, value: bool, audit: AuditEvent) -> None:
    """Stage the unit's ``passkey_counts_as_fresh`` with ``audit``."""
    unit.passkey_counts_as_fresh = value
    db.session.add(audit)
