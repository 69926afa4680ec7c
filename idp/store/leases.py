"""Leased work queues in a table: the one home of the claim idiom that the outbox
(:mod:`idp.store.outbox_repo`) and webhook deliveries
(:mod:`idp.store.webhooks_repo`) share.

A row is live while its ``status`` is ``pending`` or ``sending`` and due when its
``next_attempt_at`` has passed. Claiming moves it to ``sending`` with a lease
(``next_attempt_at`` = now + lease): a node that dies while working leaves a row
that becomes due again when the lease runs out. On PostgreSQL due rows are picked
with ``FOR UPDATE SKIP LOCKED`` so several nodes never pick the same row; on SQLite
(one writer at a time) each pick is a conditional ``UPDATE`` that only one caller
can win. Claims are committed on their own (:func:`idp.store.unit_of_work.claim`),
before the side effect, so no other node takes the row meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, bindparam, select, update

from idp.store import unit_of_work
from idp.store.db import db

PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"


class LeasedQueue:
    """The claim statements of one table with ``id``, ``status``,
    ``next_attempt_at`` and ``created_at`` columns, built once."""

    def __init__(self, table: Table) -> None:
        self.table = t = table
        self.live = t.c.status.in_((PENDING, SENDING))
        self._claim_one = (
            update(t)
            .where(t.c.id == bindparam("row_id"), self.live,
                   t.c.next_attempt_at <= bindparam("now"))
            .values(status=SENDING, next_attempt_at=bindparam("lease_until"))
            .returning(*t.c)
        )
        self._any_due = select(t.c.id).where(
            self.live, t.c.next_attempt_at <= bindparam("now")
        ).limit(1)

    def claim(self, row_id: str, now: datetime, lease: timedelta) -> Row[Any] | None:
        """Claim one row if it is due (one committed ``UPDATE ... RETURNING``); of
        concurrent callers at most one wins."""
        with unit_of_work.claim():
            return db.session.execute(
                self._claim_one, {"row_id": row_id, "now": now, "lease_until": now + lease}
            ).first()

    def claim_due(self, now: datetime, limit: int, lease: timedelta) -> Sequence[Row[Any]]:
        """Claim up to ``limit`` due rows, oldest due first, for this caller alone.

        When nothing is due this is one indexed ``SELECT`` (the idle poll takes no
        write lock). Otherwise one ``UPDATE ... WHERE id IN (due ids) RETURNING``: on
        PostgreSQL the ids are picked ``FOR UPDATE SKIP LOCKED`` so concurrent
        callers get disjoint sets; SQLite runs the whole statement under its single
        write lock. Rows come back in creation order."""
        t = self.table
        if db.session.execute(self._any_due, {"now": now}).first() is None:
            db.session.rollback()
            return []
        db.session.rollback()  # end the read: the claim runs in a transaction of its own
        due = self.live & (t.c.next_attempt_at <= now)
        ids = select(t.c.id).where(due).order_by(t.c.next_attempt_at).limit(limit)
        if db.session.get_bind().dialect.name == "postgresql":
            ids = ids.with_for_update(skip_locked=True)
        with unit_of_work.claim():
            rows = db.session.execute(
                update(t)
                .where(t.c.id.in_(ids.scalar_subquery()), due)
                .values(status=SENDING, next_attempt_at=now + lease)
                .returning(*t.c)
            ).all()
        return sorted(rows, key=lambda r: r._mapping["created_at"])
