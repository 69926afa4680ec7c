"""Audit events and savepoints (:mod:`idp.store.audit_repo`): events are held back
from every flush and inserted at the outer commit. An event staged inside a savepoint
that is rolled back never happened, so it must not reach the log, even when a flush
inside the savepoint had already held it back; a released savepoint's events commit
with the transaction, in the order they were staged."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from idp import audit
from idp.store.db import db
from idp.store.models import AuditEvent
from idp.store.unit_of_work import atomic


def _actions(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.action.startswith("test."))
            .order_by(AuditEvent.seq)))


class _Undo(Exception):
    pass


def test_an_event_of_a_rolled_back_savepoint_is_not_recorded(app: Flask) -> None:
    actor = audit.Actor.system("savepoints")
    with app.app_context(), atomic():
        audit.record(actor, "test.before", "a")
        db.session.flush()
        try:
            with db.session.begin_nested():
                audit.record(actor, "test.undone", "b")
                db.session.flush()  # held back here, as by any query's autoflush
                with db.session.begin_nested():  # an inner savepoint, released
                    audit.record(actor, "test.undone_inner", "c")
                    db.session.flush()
                raise _Undo
        except _Undo:
            pass
        with db.session.begin_nested():  # a released savepoint: its event stays
            audit.record(actor, "test.released", "d")
            db.session.flush()
        audit.record(actor, "test.after", "e")
    assert _actions(app) == ["test.before", "test.released", "test.after"]
