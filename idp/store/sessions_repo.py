"""Repository of browser sessions. Writes are staged; the caller commits them
(:func:`idp.store.unit_of_work.atomic`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Exists, Select, and_, delete, exists, or_, select

from idp.store.db import db, rowcount
from idp.store.models import (
    Impersonation,
    OidcSessionParticipant,
    SamlSessionParticipant,
    Session,
)


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


def _participants() -> tuple[Exists, Exists]:
    """Whether the session (the outer query's ``sessions`` row) has an OIDC, and a
    SAML, logout participant: correlated ``EXISTS``, each answered by a probe of the
    participants' ``session_id_hash`` index per candidate session, never a scan,
    sort or hash of every participant row (an ``IN (… UNION …)`` over both tables
    read them all, ~100 ms at 100,000 participants)."""
    return (exists().where(OidcSessionParticipant.session_id_hash == Session.id_hash),
            exists().where(SamlSessionParticipant.session_id_hash == Session.id_hash))


def _has_participant() -> ColumnElement[bool]:
    return or_(*_participants())


def _has_no_participant() -> ColumnElement[bool]:
    """Two ``NOT EXISTS`` side by side (PostgreSQL plans them as anti-joins; a
    ``NOT (… OR …)`` it could only filter with)."""
    oidc, saml = _participants()
    return and_(~oidc, ~saml)


def unseen_query(now: datetime, idle_since: datetime, limit: int) -> Select[Session]:
    """The query of :func:`unseen_with_participants`. Its time condition is answered
    from ``ix_sessions_expires_at`` and ``ix_sessions_last_seen_at`` (migration
    0012s): with an index on one column only, the OR needs the whole table. The
    participants are probed per candidate (:func:`_has_participant`)."""
    idle = and_(Session.last_seen_at <= idle_since, ~_returned_to())
    return (
        select(Session)
        .where(_has_participant(), (Session.expires_at <= now) | idle)
        .order_by(Session.expires_at)
        .limit(limit)
    )


def _returned_to() -> ColumnElement[bool]:
    """The session is an actor's own one that an impersonation which has not ended
    will return to: unused while they act as someone, it has not gone idle."""
    return exists().where(Impersonation.actor_session_hash == Session.id_hash,
                          Impersonation.ended_at.is_(None))


def _ended_without_participants(expired_before: datetime,
                                idle_before: datetime) -> ColumnElement[bool]:
    """Sessions that ended (past ``expires_at``, or idle: unused since) before the
    given times and have no logout participant left to tell (those are the
    sweeper's, :func:`unseen_with_participants`). A session idle for long is kept
    while it may still be needed: one that acts as someone (an impersonation; it
    ends at its ``expires_at``, the impersonation's time limit) and the actor's own
    session an impersonation that has not ended will return to (its last use is
    from before the impersonation began)."""
    idle = and_(Session.last_seen_at <= idle_before, Session.impersonation_id.is_(None),
                ~_returned_to())
    return and_(_has_no_participant(), or_(Session.expires_at <= expired_before, idle))


def prune_ended_query(expired_before: datetime, idle_before: datetime,
                      limit: int) -> Select[str]:
    """The ids :func:`prune_ended` chooses: up to ``limit``, in no particular order
    (none is needed: all of them go, and without one a backlog of many is never
    sorted to take a batch)."""
    return (
        select(Session.id_hash)
        .where(_ended_without_participants(expired_before, idle_before))
        .limit(limit)
    )


def prune_ended(expired_before: datetime, idle_before: datetime, limit: int) -> int:
    """Stage the deletion of up to ``limit`` sessions that expired before
    ``expired_before`` or were last used before ``idle_before``, and have no logout
    participant (:func:`_ended_without_participants`); how many rows this statement
    deleted. The delete checks the condition again, and a row another node deleted
    first is not counted: callers on several nodes at once delete each row once."""
    chosen = list(db.session.scalars(prune_ended_query(expired_before, idle_before, limit)))
    if not chosen:
        return 0
    return rowcount(db.session.execute(
        delete(Session)
        .where(Session.id_hash.in_(chosen),
               _ended_without_participants(expired_before, idle_before))
        .execution_options(synchronize_session=False)
    ))
