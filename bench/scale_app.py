"""The app of the benchmarks at scale (``accesses_bench``, ``customers_bench``): a
fresh PostgreSQL database of the benchmark's own, ``idp init`` on it, and the app
built in this process with only the ``IDP_*`` settings the benchmark sets, so the
list endpoints are timed in-process (server time, no network). The database is
dropped afterwards unless the caller keeps it to explain queries."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get(
    "IDP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _admin(sql: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(sql))
    admin.dispose()


def drop(name: str) -> None:
    """Drop the benchmark database ``name`` if it exists."""
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scale_app(name: str, keep: bool = False) -> Iterator[tuple[Any, str]]:
    """``(app, database URL)`` on a new database ``name``; dropped at the end
    unless ``keep``."""
    drop(name)
    _admin(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    tmp = tempfile.mkdtemp(prefix=f"unitgate-{name}-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(IDP_DATABASE_URL=url, IDP_MASTER_KEY_FILE=str(Path(tmp) / "master.key"),
               IDP_ISSUER="http://127.0.0.1:9", IDP_LOG_LEVEL="WARNING",
               IDP_SECURE_COOKIES="false")
    try:
        done = subprocess.run([sys.executable, "-m", "idp.cli", "init", "--json"], env=env,
                              cwd=ROOT, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"idp init failed: {done.stderr[-2000:]}")
        os.environ.clear()
        os.environ.update(env)
        from idp.app import create_app

        yield create_app(), url
    finally:
        if not keep:
            drop(name)
