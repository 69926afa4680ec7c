"""Tell per-process caches when this process commits a change to rows they copy.

A cache of database rows must forget them as soon as this process changes them,
and relying on every writer to call ``invalidate()`` breaks with the next writer.
Instead :func:`on_commit` registers a callback that runs right after any commit of
the shared session (:data:`idp.store.db.db`) in which an instance of the given
models was added, changed or deleted: through the unit of work (every repository
write: ``save``, ``remove``, ``db.session.add``/``delete`` + ``commit``, including
rows deleted or orphaned by an ORM cascade of a watched parent) or a legacy
``Query.update()``/``Query.delete()``.

Not seen, so a cache must bound its staleness by a short TTL anyway: writes of
other processes and nodes, raw SQL, and 2.0-style bulk statements
(``session.execute(update(Model))``) -- catching those would tax every query of
every request with a ``do_orm_execute`` hook, and no code path writes a watched
table that way (``tests/test_domain_cache.py`` guards this for the domain cache).

A savepoint's release is not the commit: callbacks wait for the outermost
transaction. :func:`uncommitted` tells a cache that the current session holds
changes to its models that are not committed yet, so it reads through and stores
nothing (a rollback would make the stored copy a lie).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from idp.store.db import db

_CHANGED = "unitgate.changed_models"  # key in Session.info: types flushed since the commit
_watchers: list[tuple[frozenset[type], Callable[[], None]]] = []


def on_commit(models: Iterable[type], callback: Callable[[], None]) -> None:
    """Call ``callback()`` (no arguments, must not raise, must not use the session)
    after every commit that changed a row of any of ``models``. It runs in the
    committing thread, inside its app context."""
    _watchers.append((frozenset(models), callback))


def watched_models() -> frozenset[type]:
    """Every model some callback watches (tests check that nothing writes them in a
    way the hook cannot see)."""
    return frozenset().union(*(models for models, _ in _watchers))


def _touches(types: Iterable[type], models: frozenset[type]) -> bool:
    return any(not models.isdisjoint(t.__mro__) for t in types)


def uncommitted(models: Iterable[type]) -> bool:
    """True when the current session has changes to ``models`` that are not
    committed: flushed in the open transaction, or added/changed/deleted and not
    flushed yet."""
    if not db.session.registry.has():
        return False  # no session in this context yet: nothing can be pending
    session = db.session()
    wanted = frozenset(models)
    if _touches(session.info.get(_CHANGED, ()), wanted):
        return True
    return _touches({type(o) for o in chain(session.new, session.dirty, session.deleted)}, wanted)


def _note(session: Session, types: Iterable[type]) -> None:
    session.info.setdefault(_CHANGED, set()).update(types)


def note_bulk_write(*models: type) -> None:
    """Say that the open transaction wrote ``models`` with a 2.0-style bulk statement
    (``update(Model)``, ``delete(Model)``), which the hooks cannot see: their
    callbacks then run at the commit as for any other write."""
    _note(db.session(), models)


def _after_flush(session: Session, _context: Any) -> None:
    # Still the pre-flush view here: these are the objects this flush wrote.
    _note(session, (type(o) for o in chain(session.new, session.dirty, session.deleted)))


def _after_bulk(context: Any) -> None:
    # Query.update()/delete(): the query's entity (a mapper or an alias of one).
    _note(context.session, [context.mapper.class_])


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a RELEASE SAVEPOINT: nothing is visible to others yet
    changed = session.info.pop(_CHANGED, None)
    if not changed:
        return
    for models, callback in _watchers:
        if _touches(changed, models):
            callback()


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # rolled back or closed: nothing was written
        session.info.pop(_CHANGED, None)


event.listen(db.session, "after_flush", _after_flush)
event.listen(db.session, "after_bulk_update", _after_bulk)
event.listen(db.session, "after_bulk_delete", _after_bulk)
event.listen(db.session, "after_commit", _after_commit)
event.listen(db.session, "after_transaction_end", _after_transaction_end)
