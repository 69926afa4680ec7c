"""The one transaction idiom: services decide and commit, repositories only stage.

A repository function adds, changes or deletes rows in the current session and
returns; it never commits. The service that decided the change wraps the calls that
belong together in :func:`atomic`::

    with atomic():
        units_repo.stage(unit, audit.event(actor, "unit.update", unit.slug, changed))

so a change, its audit events and its outbox messages commit together or not at all.

One exception, named so it can be found: a *claim* (:func:`claim`) is committed on
its own, inside the repository function that makes it, because the commit *is* the
claim -- other nodes must see it before the caller goes on (the outbox courier's
lease on a message before the SMTP hand-over, a TOTP time step accepted once). Only
the functions listed in ``tests/test_unit_of_work_guard.py`` may use it; that test
also fails when any other module of ``idp`` calls ``.commit()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from idp.store.db import db


class Conflict(Exception):
    """A uniqueness constraint refused the write (nothing was written)."""


@contextmanager
def atomic() -> Iterator[None]:
    """Commit what the block staged, or roll all of it back if the block raises
    (exceptions pass through). A uniqueness violation at flush or commit, or a row
    changed since it was read (a versioned model's stale write), surfaces as
    :class:`Conflict`."""
    try:
        yield
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict(str(exc.orig)[:200]) from None
    except StaleDataError:
        db.session.rollback()
        raise Conflict("changed concurrently") from None
    except BaseException:
        db.session.rollback()
        raise


@contextmanager
def claim() -> Iterator[None]:
    """A claim committed on its own: commit what the block wrote as soon as it ends
    (roll it back if it raises; exceptions pass through unchanged).

    For conditional writes that only one of several concurrent callers can win and
    whose result must be durable before the caller acts on it. It is used by a
    documented list of repository functions only (see the module docstring); every
    other write is staged and committed by its service through :func:`atomic`."""
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def save(*rows: object) -> None:
    """Add ``rows`` (new or changed, with their audit events) and commit them in one
    transaction: a shortcut for ``with atomic():`` adding them. :class:`Conflict`
    (after rolling back) on a unique-constraint violation."""
    with atomic():
        for row in rows:
            db.session.add(row)


def remove(row: object, *staged: object) -> None:
    """Delete ``row`` (its dependants cascade) and add ``staged`` (audit events) in
    one transaction: a shortcut for ``with atomic():``."""
    with atomic():
        for other in staged:
            db.session.add(other)
        db.session.delete(row)


def rollback() -> None:
    """Forget staged, uncommitted changes (dry runs and refused changes leave nothing)."""
    db.session.rollback()
