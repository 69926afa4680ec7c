"""SQL backend of the ephemeral store (`idp.ephemeral`), on the app's own database.

Works with several worker processes and nodes because every operation is one atomic
statement: ``take`` is ``DELETE ... RETURNING``, ``incr`` and ``add`` are upserts
(SQLite >= 3.35 and PostgreSQL both support them). Expired rows are ignored by every
read and purged opportunistically.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import case, cast, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import Integer, Text

from idp.ephemeral import EphemeralUnavailable
from idp.store.models import EphemeralEntry

_table = EphemeralEntry.__table__


class SQLStore:
    def __init__(self, engine_getter: Callable[[], Engine]) -> None:
        self._engine_getter = engine_getter

    def _run(self, fn: Callable[[Any], Any]) -> Any:
        try:
            with self._engine_getter().begin() as conn:
                return fn(conn)
        except SQLAlchemyError as exc:
            raise EphemeralUnavailable(f"database: {type(exc).__name__}") from exc

    def _insert(self, conn: Any) -> Any:
        if conn.dialect.name == "postgresql":
            return postgresql.insert(_table)
        return sqlite.insert(_table)

    def _maybe_purge(self, conn: Any, now: float) -> None:
        if secrets.randbelow(200) == 0:
            conn.execute(delete(_table).where(_table.c.expires_at <= now))

    def put(self, key: str, value: Any, ttl: int) -> None:
        now = time.time()

        def op(conn: Any) -> None:
            stmt = self._insert(conn).values(key=key, value=json.dumps(value), expires_at=now + ttl)
            stmt = stmt.on_conflict_do_update(
                index_elements=[_table.c.key],
                set_={"value": stmt.excluded.value, "expires_at": stmt.excluded.expires_at},
            )
            conn.execute(stmt)
            self._maybe_purge(conn, now)

        self._run(op)

    def add(self, key: str, value: Any, ttl: int) -> bool:
        now = time.time()

        def op(conn: Any) -> bool:
            stmt = self._insert(conn).values(key=key, value=json.dumps(value), expires_at=now + ttl)
            stmt = stmt.on_conflict_do_update(
                index_elements=[_table.c.key],
                set_={"value": stmt.excluded.value, "expires_at": stmt.excluded.expires_at},
                where=_table.c.expires_at <= now,
            ).returning(_table.c.key)
            return conn.execute(stmt).first() is not None

        return bool(self._run(op))

    def get(self, key: str) -> Any | None:
        now = time.time()

        def op(conn: Any) -> Any | None:
            row = conn.execute(
                select(_table.c.value).where(_table.c.key == key, _table.c.expires_at > now)
            ).first()
            return None if row is None else json.loads(row[0])

        return self._run(op)

    def take(self, key: str) -> Any | None:
        now = time.time()

        def op(conn: Any) -> Any | None:
            row = conn.execute(
                delete(_table)
                .where(_table.c.key == key)
                .returning(_table.c.value, _table.c.expires_at)
            ).first()
            if row is None or row[1] <= now:
                return None
            return json.loads(row[0])

        return self._run(op)

    def delete(self, key: str) -> None:
        self._run(lambda conn: conn.execute(delete(_table).where(_table.c.key == key)))

    def incr(self, key: str, ttl: int) -> int:
        now = time.time()

        def op(conn: Any) -> int:
            stmt = self._insert(conn).values(key=key, value="1", expires_at=now + ttl)
            expired = _table.c.expires_at <= now
            stmt = stmt.on_conflict_do_update(
                index_elements=[_table.c.key],
                set_={
                    "value": case(
                        (expired, "1"),
                        else_=cast(cast(_table.c.value, Integer) + 1, Text),
                    ),
                    "expires_at": case((expired, now + ttl), else_=_table.c.expires_at),
                },
            ).returning(_table.c.value)
            return int(conn.execute(stmt).scalar_one())

        return int(self._run(op))

    def ping(self) -> None:
        self._run(lambda conn: conn.execute(select(1)))
