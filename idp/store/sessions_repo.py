"""Repository of browser sessions. Writes are staged; the caller commits them
(:func:`idp.store.unit_of_work.atomic`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, delete, select

from idp.store.db import db, rowcount
from idp.store.models import OidcSessionParticipant, SamlSessionParticipant, Session


def insert(row: Session) -> None:
    db.session.add(row)


def by_hash(id_hash: str) -> Session | None:
    return db.session.get(Session, id_hash)


def touch(row: Session, at: datetime) -> None:
    row.last_seen_at = at


def remove(id_hash: str) -> int:
    """Stage the removal of one session; 1 if it was there, 0 if another transaction
    removed it first (the caller then has nothing more to do for it)."""
    return rowcount(db.session.execute(delete(Session).where(Session.id_hash == id_hash)))


def remove_for_account(account_id: str, keep: str | None = None) -> int:
    """End every session of an account but the one whose hash is ``keep`` (staged;
    the caller commits); returns how many were ended."""
    query = delete(Session).where(Session.account_id == account_id)
    if keep is not None:
        query = query.where(Session.id_hash != keep)
    result = db.session.execute(query)
    return rowcount(result)


def for_account(account_id: str) -> list[Session]:
    return list(db.session.scalars(select(Session).where(Session.account_id == account_id)))


def unseen_with_participants(now: datetime, idle_since: datetime, limit: int) -> list[Session]:
    """Up to ``limit`` sessions past their lifetime (``expires_at``) or idle since
    before ``idle_since`` that still have an OIDC or SAML logout participant: the
    sessions that ended unseen and whose relying parties were not yet told."""
    return list(db.session.scalars(unseen_query(now, idle_since, limit)))


def unseen_query(now: datetime, idle_since: datetime, limit: int) -> Select[Session]:
    """The query of :func:`unseen_with_participants`. Its time condition is answered
    from ``ix_sessions_expires_at`` and ``ix_sessions_last_seen_at`` (migration
    0012s): with an index on one column only, the OR needs the whole table."""
    with_participants = select(OidcSessionParticipant.session_id_hash).union(
        select(SamlSessionParticipant.session_id_hash)
    )
    return (
        select(Session)
        .where(Session.id_hash.in_(with_participants.scalar_subquery()),
               (Session.expires_at <= now) | (Session.last_seen_at <= idle_since))
        .order_by(Session.expires_at)
        .limit(limit)
    )
