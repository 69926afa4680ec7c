"""Migration 0012p (``access_imports``: the console's CSV imports in the background)
on a database that revision 0012m created and filled, on SQLite and PostgreSQL: the
table is added empty, takes an import of an existing unit, and goes with its unit;
downgrade drops it and keeps the units."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from idp.store import migrate
from tests.test_migration_0009s import fill_like_previous

PREVIOUS = "0012m"
THIS = "0012p"
NOW = "2026-12-06 13:15:00+00:00"


def test_upgrade_adds_access_imports_and_downgrade_drops_it(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)
    command.upgrade(config, THIS)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM access_imports")).scalar() == 0
            conn.execute(sa.text(
                "INSERT INTO access_imports (id, unit_id, account_id, dry_run, data, status,"
                " attempts, next_attempt_at, rows_total, rows_done, created_at) VALUES"
                " ('i1', 'u1', 'a1', false, :data, 'pending', 0, :now, 1, 0, :now)"),
                {"data": b"email\nann@acme.example\n", "now": NOW})
            row = conn.execute(sa.text(
                "SELECT unit_id, rows_total, report, finished_at FROM access_imports")).one()
            assert tuple(row) == ("u1", 1, None, None)
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            assert "access_imports" not in sa.inspect(conn).get_table_names()
            assert conn.execute(sa.text("SELECT count(*) FROM units")).scalar() == 1
        command.upgrade(config, "head")
    finally:
        engine.dispose()
