"""Repository of the outbox: side effects (e-mail) written in the same transaction as
their cause and delivered later, at least once, by any node.

Claiming a message for delivery moves it to ``sending`` with a lease
(``next_attempt_at`` = now + lease): a node that dies while sending leaves a message
that becomes due again when the lease runs out. On PostgreSQL due messages are picked
with ``FOR UPDATE SKIP LOCKED`` so several nodes never pick the same row; on SQLite
(one writer at a time) each pick is a conditional ``UPDATE`` that only one caller
can win.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from idp.store.db import db
from idp.store.models import OutboxMessage, utcnow

PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"


def stage(message: OutboxMessage) -> None:
    """Add ``message`` to the current transaction (the caller commits with its cause)."""
    db.session.add(message)


def insert(message: OutboxMessage) -> OutboxMessage:
    """Persist ``message`` in its own transaction."""
    db.session.add(message)
    db.session.commit()
    return message


def get(message_id: str) -> OutboxMessage | None:
    """The message with this id, or None."""
    return db.session.get(OutboxMessage, message_id)


def _due(now: datetime) -> Any:
    return or_(OutboxMessage.status == PENDING, OutboxMessage.status == SENDING) & (
        OutboxMessage.next_attempt_at <= now
    )


def claim(message_id: str, now: datetime, lease: timedelta) -> OutboxMessage | None:
    """Claim one message if it is due; of concurrent callers at most one wins."""
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, _due(now))
        .values(status=SENDING, next_attempt_at=now + lease)
    )
    db.session.commit()
    if result.rowcount != 1:
        return None
    row = db.session.get(OutboxMessage, message_id)
    if row is not None:
        db.session.refresh(row)
    return row


def claim_due(now: datetime, limit: int, lease: timedelta) -> list[OutboxMessage]:
    """Claim up to ``limit`` due messages, oldest due first, for this caller alone."""
    query = (
        select(OutboxMessage.id)
        .where(_due(now))
        .order_by(OutboxMessage.next_attempt_at)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        ids = list(db.session.scalars(query.with_for_update(skip_locked=True)))
        if ids:
            db.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids))
                .values(status=SENDING, next_attempt_at=now + lease)
            )
        db.session.commit()
        rows = [db.session.get(OutboxMessage, i) for i in ids]
        for row in rows:
            if row is not None:
                db.session.refresh(row)
        return [r for r in rows if r is not None]
    ids = list(db.session.scalars(query))
    db.session.commit()
    claimed = [claim(i, now, lease) for i in ids]
    return [r for r in claimed if r is not None]


def mark_sent(message_id: str, payload: dict[str, Any], at: datetime | None = None) -> None:
    """Record a successful delivery (and the payload to keep, secrets removed)."""
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(
            status=SENT,
            sent_at=at or utcnow(),
            payload=payload,
            last_error=None,
            attempts=OutboxMessage.attempts + 1,
        )
    )
    db.session.commit()


def mark_failed(
    message_id: str,
    error: str,
    next_attempt_at: datetime,
    dead: bool,
    payload: dict[str, Any] | None = None,
) -> None:
    """Record a failed attempt: pending again at ``next_attempt_at``, or ``dead``
    (optionally replacing the payload, e.g. to drop a body never to be sent)."""
    values: dict[str, Any] = {
        "status": DEAD if dead else PENDING,
        "attempts": OutboxMessage.attempts + 1,
        "next_attempt_at": next_attempt_at,
        "last_error": error[:2000],
    }
    if payload is not None:
        values["payload"] = payload
    db.session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values)
    )
    db.session.commit()


def recent(limit: int = 50) -> list[OutboxMessage]:
    """The newest messages first."""
    return list(
        db.session.scalars(
            select(OutboxMessage).order_by(OutboxMessage.created_at.desc()).limit(limit)
        )
    )


def count_by_status() -> dict[str, int]:
    """How many messages are in each status (for health pages and tests)."""
    rows = db.session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    )
    return {status: int(n) for status, n in rows}
