"""Database reachability checks for health endpoints and error classification."""

from __future__ import annotations

import contextlib

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from idp.store.db import db


def is_connection_error(exc: BaseException) -> bool:
    """True when ``exc`` means the database could not be reached (answer 503)."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def ping() -> None:
    """Raise unless the database answers ``SELECT 1``."""
    db.session.execute(text("SELECT 1"))


def rollback() -> None:
    db.session.rollback()


def rollback_quietly() -> None:
    """Roll back after a failed check; a dead connection may fail that too."""
    with contextlib.suppress(Exception):
        db.session.rollback()


def schema_revision() -> str | None:
    """The database's Alembic revision, read on the session's connection."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(db.session.connection()).get_current_revision()
