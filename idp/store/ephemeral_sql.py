"""SQL backend of the ephemeral store (`idp.ephemeral`), on the app's own database.

Works with several worker processes and nodes because every operation is one atomic
statement: ``take`` is ``DELETE ... RETURNING``, ``incr`` and ``add`` are upserts
(SQLite >= 3.35 and PostgreSQL both support them). Expired rows are ignored by every
read and purged opportunistically.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import time
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from idp.ephemeral import EphemeralUnavailable
from idp.store.models import EphemeralEntry

# A declarative class's ``__table__`` is typed as any FromClause; this one is a Table.
_table = cast(Table, EphemeralEntry.__table__)


# The statements as plain SQL, one set per dialect, executed with
# ``exec_driver_sql``: these few statements run on every login request, and building
# and cache-keying SQLAlchemy constructs cost more than the database round trip.
# Both sqlite3 (named ``:name``) and psycopg (``%(name)s``) take a dict of parameters.
assert _table.name == "ephemeral"  # the statements below name it
_SQL = {
    "put": "INSERT INTO ephemeral (key, value, expires_at) VALUES (:key, :value, :exp) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
    "add": "INSERT INTO ephemeral (key, value, expires_at) VALUES (:key, :value, :exp) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at "
    "WHERE ephemeral.expires_at <= :now RETURNING key",
    "get": "SELECT value FROM ephemeral WHERE key = :key AND expires_at > :now",
    "take": "DELETE FROM ephemeral WHERE key = :key RETURNING value, expires_at",
    "delete": "DELETE FROM ephemeral WHERE key = :key",
    "incr": "INSERT INTO ephemeral (key, value, expires_at) VALUES (:key, '1', :exp) "
    "ON CONFLICT (key) DO UPDATE SET "
    "value = CASE WHEN ephemeral.expires_at <= :now THEN '1' "
    "ELSE CAST(CAST(ephemeral.value AS INTEGER) + 1 AS TEXT) END, "
    "expires_at = CASE WHEN ephemeral.expires_at <= :now THEN :exp ELSE ephemeral.expires_at END "
    "RETURNING value",
    "purge": "DELETE FROM ephemeral WHERE expires_at <= :now",
    "ping": "SELECT 1",
}
_PYFORMAT = {name: re.sub(r":(\w+)", r"%(\1)s", sql) for name, sql in _SQL.items()}


class SQLStore:
    def __init__(self, engine_getter: Callable[[], Engine]) -> None:
        self._engine_getter = engine_getter

    def _run(self, name: str, params: dict[str, Any], fetch: bool = False) -> Any:
        """Run one statement in its own transaction (committed on return); the first
        row when ``fetch``. Any database error becomes :class:`EphemeralUnavailable`.

        Runs on a pooled DB-API connection directly (cursor, commit, back to the
        pool): the SQLAlchemy connection, transaction and result wrappers cost
        about four times the statement itself on SQLite, and every login request
        makes a few of these calls."""
        engine = self._engine_getter()
        statements = _PYFORMAT if engine.dialect.paramstyle == "pyformat" else _SQL
        dbapi_error: Any = engine.dialect.loaded_dbapi.Error
        try:
            conn = engine.raw_connection()  # the pool does not wrap connect errors
        except (SQLAlchemyError, dbapi_error) as exc:
            raise EphemeralUnavailable(f"database: {type(exc).__name__}") from exc
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(statements[name], params)
                row = cursor.fetchone() if fetch else None
                if name == "put" and secrets.randbelow(200) == 0:  # opportunistic purge
                    cursor.execute(statements["purge"], {"now": params["now"]})
            finally:
                cursor.close()
            conn.commit()
            return None if row is None else tuple(row)
        except dbapi_error as exc:
            with contextlib.suppress(dbapi_error):
                conn.rollback()
            raise EphemeralUnavailable(f"database: {type(exc).__name__}") from exc
        finally:
            conn.close()  # back to the pool

    def put(self, key: str, value: Any, ttl: int) -> None:
        now = time.time()
        self._run("put", {"key": key, "value": json.dumps(value), "exp": now + ttl, "now": now})

    def add(self, key: str, value: Any, ttl: int) -> bool:
        now = time.time()
        params = {"key": key, "value": json.dumps(value), "exp": now + ttl, "now": now}
        return self._run("add", params, fetch=True) is not None

    def get(self, key: str) -> Any | None:
        row = self._run("get", {"key": key, "now": time.time()}, fetch=True)
        return None if row is None else json.loads(row[0])

    def take(self, key: str) -> Any | None:
        now = time.time()
        row = self._run("take", {"key": key}, fetch=True)
        if row is None or row[1] <= now:
            return None
        return json.loads(row[0])

    def delete(self, key: str) -> None:
        self._run("delete", {"key": key})

    def incr(self, key: str, ttl: int) -> int:
        now = time.time()
        row = self._run("incr", {"key": key, "exp": now + ttl, "now": now}, fetch=True)
        return int(row[0])

    def ping(self) -> None:
        self._run("ping", {}, fetch=True)
