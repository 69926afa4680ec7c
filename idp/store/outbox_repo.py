"""Repository of the outbox: side effects (e-mail) written in the same transaction as
their cause and delivered later, at least once, by any node.

Claiming a message for delivery moves it to ``sending`` with a lease
(``next_attempt_at`` = now + lease): a node that dies while sending leaves a message
that becomes due again when the lease runs out. On PostgreSQL due messages are picked
with ``FOR UPDATE SKIP LOCKED`` so several nodes never pick the same row; on SQLite
(one writer at a time) each pick is a conditional ``UPDATE`` that only one caller
can win.

The courier's statements are few and built once (a message costs one claiming
``UPDATE ... RETURNING`` and one ``UPDATE`` marking it sent, each committed): the
claim must be committed before the SMTP hand-over so that no other node picks the
message while it is being sent, and the mark after it. So :func:`claim` and
:func:`claim_due` are claims committed on their own
(:func:`idp.store.unit_of_work.claim`); every other write here is only staged, and
its caller commits it (:func:`idp.store.unit_of_work.atomic`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy import insert as sql_insert

from idp.store import leases
from idp.store.db import db
from idp.store.leases import DEAD, PENDING, SENT
from idp.store.leases import SENDING as SENDING
from idp.store.models import OutboxMessage, utcnow

# A declarative class's ``__table__`` is typed as any FromClause; this one is a Table.
_T = cast(Table, OutboxMessage.__table__)
_QUEUE = leases.LeasedQueue(_T)
_LIVE = _QUEUE.live
_INSERT = sql_insert(_T)
_MARK_SENT = (
    update(_T)
    .where(_T.c.id == bindparam("message_id"))
    .values(
        status=SENT,
        sent_at=bindparam("at"),
        payload=bindparam("kept_payload"),
        last_error=None,
        attempts=_T.c.attempts + 1,
    )
)


def _message(row: Any) -> OutboxMessage:
    """A detached :class:`OutboxMessage` holding the columns of a returned row."""
    return OutboxMessage(**row._mapping)


def stage(message: OutboxMessage) -> None:
    """Add ``message`` to the current transaction (the caller commits with its cause)."""
    db.session.add(message)


def insert(message: OutboxMessage) -> OutboxMessage:
    """Write ``message`` in the current transaction (one ``INSERT``, no ORM flush);
    the caller commits."""
    created = message.created_at or utcnow()
    db.session.execute(
        _INSERT,
        {
            "id": message.id,
            "kind": message.kind or "email",
            "payload": message.payload,
            "status": message.status or PENDING,
            "attempts": message.attempts or 0,
            "next_attempt_at": message.next_attempt_at or created,
            "created_at": created,
        },
    )
    return message


def get(message_id: str) -> OutboxMessage | None:
    """The message with this id, or None."""
    return db.session.get(OutboxMessage, message_id)


def claim(message_id: str, now: datetime, lease: timedelta) -> OutboxMessage | None:
    """Claim one message if it is due (:meth:`idp.store.leases.LeasedQueue.claim`);
    of concurrent callers at most one wins. The message returned is detached."""
    row = _QUEUE.claim(message_id, now, lease)
    return None if row is None else _message(row)


def claim_due(now: datetime, limit: int, lease: timedelta) -> list[OutboxMessage]:
    """Claim up to ``limit`` due messages for this caller alone
    (:meth:`idp.store.leases.LeasedQueue.claim_due`), in creation order."""
    return [_message(r) for r in _QUEUE.claim_due(now, limit, lease)]


def mark_sent(message_id: str, payload: dict[str, Any], at: datetime | None = None) -> None:
    """Record a successful delivery (and the payload to keep, secrets removed); the
    caller commits."""
    db.session.execute(
        _MARK_SENT, {"message_id": message_id, "at": at or utcnow(), "kept_payload": payload}
    )


def mark_failed(
    message_id: str,
    error: str,
    next_attempt_at: datetime,
    dead: bool,
    payload: dict[str, Any] | None = None,
) -> None:
    """Record a failed attempt: pending again at ``next_attempt_at``, or ``dead``
    (optionally replacing the payload, e.g. to drop a body never to be sent); the
    caller commits."""
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


def backlog() -> tuple[int, int, datetime | None]:
    """Messages not yet delivered (``pending`` or ``sending``), dead ones, and the
    creation time of the oldest undelivered one (for the metrics)."""
    live = db.session.execute(select(func.count(), func.min(_T.c.created_at)).where(_LIVE)).one()
    dead = db.session.scalar(select(func.count()).select_from(_T).where(_T.c.status == DEAD))
    return int(live[0] or 0), int(dead or 0), live[1]
