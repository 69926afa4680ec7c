"""The Flask-SQLAlchemy handle and engine set-up. Only ``idp.store`` imports SQLAlchemy."""

from __future__ import annotations

from typing import Any, cast

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import CursorResult, Engine, Result

from idp.store.models import Base

# Sessions are request-scoped (Flask-SQLAlchemy ends them with the request or app
# context), so objects are not expired on commit: reading an attribute after a commit
# in the same request does not cost another SELECT. A request that needs another
# transaction's newer data reads it with a new query, never through a kept object.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})


def keep(obj: Any) -> Any:
    """Hold ``obj`` for the rest of this request's session and return it.

    The session's identity map holds objects only weakly: an account loaded in one
    step of a request and dropped is loaded again by the next ``session.get``. A
    kept object is answered from the identity map instead (the session, and so the
    reference, ends with the request)."""
    if obj is not None:
        db.session.info.setdefault("kept", set()).add(obj)
    return obj


def rowcount(result: Result[Any]) -> int:
    """The number of rows an UPDATE, DELETE or INSERT run through the session matched.

    ``Session.execute`` is typed to return a plain ``Result``; for a DML statement it is
    a ``CursorResult``, which carries the count (0 when the driver reports none)."""
    return int(cast(CursorResult[Any], result).rowcount or 0)


def engine_options(url: str) -> dict[str, Any]:
    """Pool options: SQLite gets a busy timeout so several workers can share the file."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def init_db(app: Flask, url: str) -> None:
    """Bind the database to ``app``; SQLite runs in WAL mode with foreign keys on."""
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(url)
    db.init_app(app)
    if url.startswith("sqlite"):
        with app.app_context():
            engine: Engine = db.engine
            if not event.contains(engine, "connect", _sqlite_pragmas):
                event.listen(engine, "connect", _sqlite_pragmas)
