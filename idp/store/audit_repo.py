"""Repository of audit events (append-only: never updated or deleted here).

Sequence numbers in commit order. An event's ``seq`` is drawn from the database
(IDENTITY on PostgreSQL, AUTOINCREMENT rowid on SQLite) when its row is inserted. If
rows were inserted whenever the session flushes, a transaction could draw seq 10,
another draw 11 and commit first, and an exporter that already read past 11 would
never see 10. So audit events are held back: a flush before the commit leaves them out
(they wait in the session), and the commit flushes the transaction's other rows,
takes a transaction-scoped advisory lock on PostgreSQL (:data:`LOCK_KEY`) that is held
until that commit is done, and inserts the events last, in one Core statement (they
stay detached from the session and carry the ``id``, ``at`` and ``seq`` stored).
Hence a transaction draws its numbers only when every transaction that drew lower ones
has committed or rolled back. SQLite needs no lock: it has one
writer at a time, holding the database until it commits. An event held back inside a
savepoint (``begin_nested``) that is rolled back is dropped with it: what the
savepoint did never happened.

The cost: on PostgreSQL the commits of transactions that write audit events run one
after another (their final insert and commit only; the rest of each transaction runs
in parallel), and an event is not visible to queries of its own transaction before
the commit.

This applies to every :class:`AuditEvent` added to the shared session
(:data:`idp.store.db.db`), however it was added; :func:`idp.audit.record` is the
writer that builds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Table, bindparam, event, func, insert, select, text
from sqlalchemy.orm import Session, SessionTransaction

from idp.store.db import db
from idp.store.models import AuditEvent, new_id, utcnow

LOCK_KEY = 0x55_47_41_55_44_49_54  # "UGAUDIT": PostgreSQL advisory lock of audit commits

_HELD = "unitgate.audit_held"  # Session.info: events held back from earlier flushes
_RELEASING = "unitgate.audit_releasing"  # Session.info: the commit's flush may insert
# Session.info: (savepoint, event) for events held back inside a savepoint, so that a
# rollback to it drops them (they never happened)
_HELD_IN = "unitgate.audit_held_in_savepoint"


def add(event: AuditEvent) -> None:
    """Stage ``event`` in the current transaction. It is inserted (and gets its
    ``seq``) when the caller commits the transaction."""
    db.session.add(event)


def copy(event: AuditEvent) -> AuditEvent:
    """A new unsaved event with ``event``'s content (no ``id``, no ``seq``), for a
    transaction retried after a rollback."""
    fields = ("at", "actor", "actor_kind", "actor_id", "on_behalf_of", "unit_id",
              "action", "target", "details", "request_id")  # fmt: skip
    values = {name: getattr(event, name) for name in fields}
    return AuditEvent(**{name: value for name, value in values.items() if value is not None})


def after(cursor: int, limit: int, unit_id: str | None = None) -> Sequence[AuditEvent]:
    """Up to ``limit`` committed events with ``seq`` above ``cursor``, in ``seq``
    order, only ``unit_id``'s when given."""
    stmt = select(AuditEvent).where(AuditEvent.seq > cursor)
    if unit_id is not None:
        stmt = stmt.where(AuditEvent.unit_id == unit_id)
    return db.session.scalars(stmt.order_by(AuditEvent.seq).limit(limit)).all()


def page(
    after_seq: int,
    limit: int,
    unit_ids: Iterable[str] | None = None,
    actor_kind: str | None = None,
    actor_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Sequence[AuditEvent]:
    """Up to ``limit`` committed events with ``seq`` above ``after_seq``, in ``seq``
    order, filtered: only in ``unit_ids`` (when given), by the actor's kind and id,
    by ``action`` (exact, or a prefix when it ends with ``.``) and by time
    (``since`` inclusive, ``until`` exclusive)."""
    stmt = select(AuditEvent).where(AuditEvent.seq > after_seq)
    if unit_ids is not None:
        stmt = stmt.where(AuditEvent.unit_id.in_(list(unit_ids)))
    if actor_kind is not None:
        stmt = stmt.where(AuditEvent.actor_kind == actor_kind)
    if actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == actor_id)
    if action is not None:
        if action.endswith("."):
            stmt = stmt.where(AuditEvent.action.startswith(action, autoescape=True))
        else:
            stmt = stmt.where(AuditEvent.action == action)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.at < until)
    return db.session.scalars(stmt.order_by(AuditEvent.seq).limit(limit)).all()


def recent(
    limit: int = 100, target: str | None = None, action_prefix: str | None = None
) -> Sequence[AuditEvent]:
    """The newest events first, optionally only those about ``target`` or whose
    action starts with ``action_prefix``."""
    stmt = select(AuditEvent)
    if target is not None:
        stmt = stmt.where(AuditEvent.target == target)
    if action_prefix is not None:
        stmt = stmt.where(AuditEvent.action.startswith(action_prefix, autoescape=True))
    return db.session.scalars(stmt.order_by(AuditEvent.seq.desc()).limit(limit)).all()


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(_RELEASING):
        return
    held = [o for o in session.new if isinstance(o, AuditEvent)]
    for row in held:
        session.expunge(row)
    if held:
        session.info.setdefault(_HELD, []).extend(held)
        savepoint = session.get_nested_transaction()
        if savepoint is not None:
            session.info.setdefault(_HELD_IN, []).extend((savepoint, row) for row in held)


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    if not previous.nested:
        return  # the whole transaction: _after_transaction_end forgets everything
    marked: list[tuple[SessionTransaction, AuditEvent]] = session.info.get(_HELD_IN, [])
    undone = {id(row) for savepoint, row in marked if _within(savepoint, previous)}
    if undone:  # held back inside the savepoint rolled back (or one nested in it)
        session.info[_HELD_IN] = [(t, row) for t, row in marked if id(row) not in undone]
        session.info[_HELD] = [row for row in session.info.get(_HELD, [])
                               if id(row) not in undone]


def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint's release: the outer commit inserts the events
    held: list[AuditEvent] = session.info.pop(_HELD, [])
    fresh = [o for o in session.new if isinstance(o, AuditEvent)]
    if not held and not fresh:
        return
    # Events staged since the last flush wait too, behind the earlier ones (their
    # order is their numbers' order). The transaction's other rows are flushed first,
    # so the lock is held only for the events' insert and the commit; the lock is
    # taken on the connection, without the autoflush ``Session.execute`` would do.
    for row in fresh:
        session.expunge(row)
    held.extend(fresh)
    session.flush()
    held.extend(session.info.pop(_HELD, []))  # held back by that flush, if any
    connection = session.connection()
    # The events go in by Core statements, in order, after the lock (the ORM's unit of
    # work costs several times as much CPU); they stay detached, with the ``id``,
    # ``at`` and ``seq`` they were stored with.
    for row in held:
        row.id = row.id or new_id()
        row.at = row.at or utcnow()
        row.details = row.details if row.details is not None else {}
    values = [{name: getattr(row, name) for name in _COLUMNS} for row in held]
    if connection.dialect.name != "postgresql":  # SQLite: one writer, no lock needed
        seqs = list(connection.execute(_INSERT, values).scalars())
    elif len(values) == 1:  # the usual case: the lock and the insert in one statement
        seqs = [connection.execute(_LOCKED_INSERT, {**values[0], "lock_key": LOCK_KEY})
                .scalar_one()]
    else:
        connection.execute(_LOCK, {"key": LOCK_KEY})
        seqs = list(connection.execute(_INSERT, values).scalars())
    session.info[_RELEASING] = True  # anything flushed from here on is after the lock
    for row, seq in zip(held, seqs, strict=True):
        row.seq = seq


_TABLE = cast(Table, AuditEvent.__table__)
_COLUMNS = tuple(c.name for c in _TABLE.columns if c.name != "seq")
_INSERT = insert(_TABLE).returning(_TABLE.c.seq, sort_by_parameter_order=True)
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
# INSERT INTO audit_events (...) WITH audit_lock AS (SELECT pg_advisory_xact_lock(..))
# SELECT <the values> FROM audit_lock: the row is formed, and its seq drawn, only after
# the lock function returned.
_LOCK_CTE = select(
    func.pg_advisory_xact_lock(bindparam("lock_key", type_=BigInteger)).label("locked")
).cte("audit_lock")
_LOCKED_INSERT = insert(_TABLE).from_select(
    list(_COLUMNS),
    select(*(bindparam(name, type_=_TABLE.c[name].type) for name in _COLUMNS))
    .select_from(_LOCK_CTE),
).returning(_TABLE.c.seq)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed, rolled back or closed
        session.info.pop(_HELD, None)
        session.info.pop(_HELD_IN, None)
        session.info.pop(_RELEASING, None)


event.listen(db.session, "before_flush", _before_flush)
event.listen(db.session, "before_commit", _before_commit)
event.listen(db.session, "after_transaction_end", _after_transaction_end)
event.listen(db.session, "after_soft_rollback", _after_soft_rollback)
