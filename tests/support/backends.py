"""Storage backends for tests: database URL and Redis URL per backend pair.

PostgreSQL: one database per pytest-xdist worker (``unitgate_test_gw0`` ...), created
from the ``test`` database and migrated once per session. Redis: database 1, one key space
per test process under its own key prefix (``ugtest:<worker>:``), emptied before each
test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get(
    "IDP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379")

BACKENDS = {
    "sqlite-sql": ("sqlite", "sql"),
    "postgres-redis": ("postgres", "redis"),
    "sqlite-redis": ("sqlite", "redis"),
    "postgres-sql": ("postgres", "sql"),
}


def require_services() -> bool:
    return os.environ.get("IDP_TEST_REQUIRE_SERVICES") == "1"


def missing(reason: str) -> None:
    """Skip with ``reason``, or fail when CI demands every service."""
    if require_services():
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


def worker_id() -> str:
    """This test process's name; ``IDP_TEST_NAMESPACE`` separates concurrent runs."""
    namespace = os.environ.get("IDP_TEST_NAMESPACE", "")
    return f"{namespace}{os.environ.get('PYTEST_XDIST_WORKER', 'gw0')}"


def redis_prefix() -> str:
    return f"ugtest:{worker_id()}:"


@dataclass(frozen=True)
class Backend:
    name: str
    database_url: str
    redis_url: str | None

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")


def postgres_url() -> str:
    """A migrated-ready PostgreSQL database of this worker, or skip/fail."""
    import sqlalchemy as sa

    name = f"unitgate_test_{worker_id()}"
    try:
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if exists:
                conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:
        missing(f"PostgreSQL at {PG_ADMIN_URL} unavailable: {type(exc).__name__}: {exc}")
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


@contextmanager
def fresh_postgres(prefix: str) -> Iterator[str]:
    """An empty PostgreSQL database of this worker's own (``<prefix>_<worker>``), for
    tests that migrate or initialise a database from scratch; dropped afterwards."""
    import sqlalchemy as sa

    name = f"{prefix}_{worker_id()}"
    try:
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        missing(f"PostgreSQL at {PG_ADMIN_URL} unavailable: {type(exc).__name__}: {exc}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def redis_url() -> str:
    import redis

    url = f"{REDIS_URL}/1"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        missing(f"Redis at {REDIS_URL} unavailable: {type(exc).__name__}")
    return url


def backend_or_skip(name: str, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    db_kind, store_kind = BACKENDS[name]
    if db_kind == "postgres":
        db_url = postgres_url()
    else:
        path: Path = tmp_path_factory.mktemp(f"db-{name}") / "unitgate.db"
        db_url = f"sqlite:///{path}"
    return Backend(name, db_url, redis_url() if store_kind == "redis" else None)
