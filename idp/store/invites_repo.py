"""Repository of invitations to register through an access (``idp.accounts.invites``).
Stages only: the service commits with :func:`idp.store.unit_of_work.atomic`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from idp.store.db import db, rowcount
from idp.store.models import Access, AccessInvitation, Account, Unit


def add(row: AccessInvitation) -> None:
    """Stage a new invitation."""
    db.session.add(row)


def by_token_hash(token_hash: str) -> AccessInvitation | None:
    """The invitation whose link token hashes to ``token_hash``, or None."""
    return db.session.scalars(
        select(AccessInvitation).where(AccessInvitation.token_hash == token_hash)
    ).first()


def get(invitation_id: str) -> AccessInvitation | None:
    return db.session.get(AccessInvitation, invitation_id)


def latest_for_access(access_id: str) -> AccessInvitation | None:
    """The newest invitation of the access (any state), or None."""
    return db.session.scalars(
        select(AccessInvitation)
        .where(AccessInvitation.access_id == access_id)
        .order_by(AccessInvitation.created_at.desc(), AccessInvitation.id.desc())
        .limit(1)
    ).first()


def end_live(access_id: str, at: datetime, reason: str) -> int:
    """Stage the end of the access's live invitations (unused, not ended): their
    links and codes stop working. The number ended."""
    result = db.session.execute(
        update(AccessInvitation)
        .where(
            AccessInvitation.access_id == access_id,
            AccessInvitation.used_at.is_(None),
            AccessInvitation.revoked_at.is_(None),
        )
        .values(revoked_at=at, end_reason=reason)
        .execution_options(synchronize_session="fetch")
    )
    return rowcount(result)


def count_attempt(invitation_id: str, limit: int, at: datetime) -> int | None:
    """Stage one more wrong SMS code on a live invitation (one conditional UPDATE):
    at ``limit`` attempts it ends (``too_many_attempts``). The new count, or None when
    the invitation was no longer live."""
    row = db.session.execute(
        update(AccessInvitation)
        .where(
            AccessInvitation.id == invitation_id,
            AccessInvitation.used_at.is_(None),
            AccessInvitation.revoked_at.is_(None),
        )
        .values(attempts=AccessInvitation.attempts + 1)
        .returning(AccessInvitation.attempts)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return None
    count = int(row[0])
    if count >= limit:
        db.session.execute(
            update(AccessInvitation)
            .where(AccessInvitation.id == invitation_id)
            .values(revoked_at=at, end_reason="too_many_attempts")
            .execution_options(synchronize_session=False)
        )
    return count


def mark_used(invitation_id: str, at: datetime) -> bool:
    """Stage the redemption of a live, unexpired invitation (one conditional UPDATE:
    of concurrent redemptions at most one wins); True when this one did."""
    result = db.session.execute(
        update(AccessInvitation)
        .where(
            AccessInvitation.id == invitation_id,
            AccessInvitation.used_at.is_(None),
            AccessInvitation.revoked_at.is_(None),
            AccessInvitation.expires_at > at,
        )
        .values(used_at=at)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def access_in_unit(access_id: str, unit_id: str) -> Access | None:
    """The access ``access_id`` when it belongs to the unit ``unit_id``, else None."""
    return db.session.scalars(
        select(Access).where(Access.id == access_id, Access.unit_id == unit_id)
    ).first()


def access(access_id: str) -> Access | None:
    return db.session.get(Access, access_id)


def unit(unit_id: str) -> Unit | None:
    return db.session.get(Unit, unit_id)


def account(account_id: str) -> Account | None:
    return db.session.get(Account, account_id)


def search(
    unit_ids: set[str] | None, state_filter: str | None, now: datetime, limit: int
) -> list[tuple[AccessInvitation, str]]:
    """The newest invitations (with the invitee's address), newest first, of the
    units ``unit_ids`` (None: every unit); ``state_filter`` ``pending`` keeps the
    live, unexpired ones."""
    query: Any = select(AccessInvitation, Account.email).join(
        Account, Account.id == AccessInvitation.account_id
    )
    if unit_ids is not None:
        query = query.where(AccessInvitation.unit_id.in_(sorted(unit_ids)))
    if state_filter == "pending":
        query = query.where(
            AccessInvitation.used_at.is_(None),
            AccessInvitation.revoked_at.is_(None),
            AccessInvitation.expires_at > now,
        )
    query = query.order_by(AccessInvitation.created_at.desc()).limit(limit)
    return [(row, email) for row, email in db.session.execute(query).all()]


def flush() -> None:
    """Send what is staged (the new access gets its id before its invitation)."""
    db.session.flush()
