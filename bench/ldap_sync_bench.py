"""Benchmark: time to sync a 10,000-entry directory (target: under 60 s).

Starts a real OpenLDAP ``slapd`` (``tests.support.slapd``) holding 10,000 AD-like
users, points a fresh Unitgate database at it and measures

* the first sync (every enabled user becomes an account, membership and audit
  event; disabled ones are skipped), and
* a second sync with nothing to change (the steady state of a periodic sync).

Run it alone with ``.venv/bin/python -m bench.ldap_sync_bench [--sqlite]``; the
bench harness calls :func:`run`. PostgreSQL (``IDP_BENCH_POSTGRES_URL``, default
the local test server) is the reference database; ``--sqlite`` uses a temporary
SQLite file instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ENTRIES = 10_000
TARGET_SECONDS = 60.0
PG_ADMIN_URL = os.environ.get(
    "IDP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BENCH_DB = "unitgate_bench_ldap"


def _postgres_database() -> str:
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{BENCH_DB}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + BENCH_DB


def run(entries: int = ENTRIES, sqlite: bool = False) -> dict[str, Any]:
    """Run the benchmark and return its results (seconds and entries per second)."""
    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from idp.app import create_app
    from idp.crypto.primitives import generate_master_key
    from idp.domains import registry as domains
    from idp.ldap import directories as ldap_directories
    from idp.ldap import sync as ldap_sync
    from idp.settings import Settings
    from idp.store import migrate
    from idp.store.db import db
    from idp.store.models import PermissionGroup, Unit
    from tests.support import slapd as ldap_test

    reason = ldap_test.available()
    if reason:
        raise SystemExit(f"cannot run the LDAP benchmark: {reason}")
    with tempfile.TemporaryDirectory(prefix="ug-ldap-bench-") as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'bench.db'}" if sqlite else _postgres_database()
        (folder / "slapd").mkdir()
        server = ldap_test.Slapd(folder / "slapd")
        try:
            load_started = time.perf_counter()
            server.load(ldap_test.population_entries(ldap_test.default_population(entries)))
            load_seconds = time.perf_counter() - load_started
            migrate.upgrade(url)
            app = create_app(
                Settings(  # type: ignore[call-arg]
                    database_url=url,
                    master_key=generate_master_key(),
                    redis_url=None,
                    log_level="WARNING",
                )
            )
            with app.app_context():
                groups = ["buyer", "approver"]
                db.session.add(Unit(name="ACME", slug="acme", permission_group_rows=[
                    PermissionGroup(name=g) for g in groups]))
                db.session.commit()
                # A sync provisions only addresses in the unit's verified domains.
                domains.claim("acme", ldap_test.MAIL_DOMAIN, actor="bench")
                domains.verify_manually(ldap_test.MAIL_DOMAIN, reason="benchmark", actor="bench")
                directory = ldap_directories.create(
                    "acme",
                    ldap_directories.DirectorySettings(
                        url=server.url,
                        bind_dn=ldap_test.SYNC_DN,
                        bind_password=ldap_test.SYNC_PASSWORD,
                        base_dn=ldap_test.PEOPLE,
                        user_filter="(objectClass=inetOrgPerson)",
                        group_map={ldap_test.group_dn("buyers"): "buyer", "approvers": "approver"},
                    ),
                )
                started = time.perf_counter()
                first = ldap_sync.run_locked(directory)
                first_seconds = time.perf_counter() - started
                started = time.perf_counter()
                second = ldap_sync.run_locked(directory)
                second_seconds = time.perf_counter() - started
                db.session.remove()
                db.engine.dispose()
        finally:
            server.stop()
    return {
        "name": "ldap_sync",
        "database": "sqlite" if sqlite else "postgresql",
        "entries": entries,
        "slapadd_seconds": round(load_seconds, 2),
        "first_sync_seconds": round(first_seconds, 2),
        "first_sync_created": first.created,
        "first_sync_errors": first.errors,
        "unchanged_sync_seconds": round(second_seconds, 2),
        "unchanged_sync_unchanged": second.unchanged,
        "entries_per_second_first": round(entries / first_seconds, 1),
        "target_seconds": TARGET_SECONDS,
        "meets_target": first_seconds < TARGET_SECONDS and second_seconds < TARGET_SECONDS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=ENTRIES)
    parser.add_argument("--sqlite", action="store_true", help="use SQLite, not PostgreSQL")
    args = parser.parse_args(argv)
    result = run(args.entries, args.sqlite)
    print(json.dumps(result, indent=2))
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
