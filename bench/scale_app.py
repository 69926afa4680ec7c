"""The app of the benchmarks at scale (``accesses_bench``, ``customers_bench``): a
fresh PostgreSQL database of the benchmark's own, ``idp init`` on it, and the app
built in this process with only the ``IDP_*`` settings the benchmark sets, so the
list endpoints are timed in-process (server time, no network). The database is
dropped afterwards unless the caller keeps it to explain queries."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
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
def scale_app(
    name: str, keep: bool = False, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[Any, str]]:
    """``(app, database URL)`` on a new database ``name`` (with the ``IDP_*``
    settings of ``extra_env`` besides the benchmark's own); dropped at the end
    unless ``keep``."""
    drop(name)
    _admin(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    tmp = tempfile.mkdtemp(prefix=f"unitgate-{name}-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(IDP_DATABASE_URL=url, IDP_MASTER_KEY_FILE=str(Path(tmp) / "master.key"),
               IDP_ISSUER="http://127.0.0.1:9", IDP_LOG_LEVEL="WARNING",
               IDP_SECURE_COOKIES="false")
    env.update(extra_env or {})
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


def list_table(rows: list[dict[str, Any]], target_ms: float) -> list[str]:
    """The list scenarios as a Markdown table, flagging those over ``target_ms``."""
    lines = ["| List scenario | p50 ms | p95 ms | max ms |", "|---|---:|---:|---:|"]
    for row in rows:
        flag = "" if row["p95_ms"] < target_ms else " **over target**"
        lines.append(f"| {row['scenario']}{flag} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} "
                     f"| {row['max_ms']:.1f} |")
    return lines


def main(
    doc: str | None,
    run: Callable[[int, int, bool], dict[str, Any]],
    describe: Callable[[dict[str, Any]], str],
    customers: int,
    requests: int,
    argv: list[str] | None = None,
) -> int:
    """The command line every scale benchmark shares: sizes, JSON or text, --keep."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--customers", type=int, default=customers)
    parser.add_argument("--requests", type=int, default=requests)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--keep", action="store_true",
                        help="only seed, and keep the database (to explain queries)")
    args = parser.parse_args(argv)
    result = run(args.customers, args.requests, args.keep)
    if args.keep:
        return 0
    print(json.dumps(result) if args.json else describe(result), flush=True)
    return 0
