"""Transactional writes shared by the repositories: a change and its audit events
commit together or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError

from idp.store.db import db


class Conflict(Exception):
    """A uniqueness constraint refused the write (nothing was written)."""


@contextmanager
def atomic() -> Iterator[None]:
    """Commit what the block staged, or roll all of it back if the block raises
    (exceptions pass through). A uniqueness violation at flush or commit surfaces as
    :class:`Conflict`."""
    try:
        yield
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict(str(exc.orig)[:200]) from None
    except BaseException:
        db.session.rollback()
        raise


def save(*rows: object) -> None:
    """Add ``rows`` (new or changed, with their audit events) and commit them in one
    transaction; :class:`Conflict` (after rolling back) on a unique-constraint
    violation."""
    try:
        for row in rows:
            db.session.add(row)
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict(str(exc.orig)) from exc
    except Exception:
        db.session.rollback()
        raise


def remove(row: object, *staged: object) -> None:
    """Delete ``row`` (its dependants cascade) and add ``staged`` (audit events) in
    one transaction."""
    try:
        for other in staged:
            db.session.add(other)
        db.session.delete(row)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise


def rollback() -> None:
    """Forget staged, uncommitted changes (dry runs and refused changes leave nothing)."""
    db.session.rollback()
