"""Migration 0010b (purchases, budgets, units.time_zone) on a database that revision
0010o created and filled, on SQLite and PostgreSQL: existing units get the time zone
UTC, the new tables take rows; downgrade drops them and the column and keeps the
units."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from idp.store import migrate
from tests.test_migration_0009s import fill_like_previous

PREVIOUS = "0010o"
THIS = "0010b"
NOW = "2026-12-06 09:00:00+00:00"
TABLES = {"budgets", "budget_usage", "purchases", "payment_methods",
          "approvals", "approval_comments"}


def test_upgrade_adds_budgets_and_downgrade_removes_them(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)
    command.upgrade(config, THIS)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT time_zone FROM units")).scalar() == "UTC"
            conn.execute(sa.text(
                "INSERT INTO budgets (id, unit_id, scope, subject, period, currency,"
                " amount_minor, per_order_minor, include_subunits, created_at, updated_at,"
                " updated_by) VALUES ('b1', 'u1', 'unit', '', 'month', 'EUR', 10000, NULL,"
                " false, :now, :now, 'test')"), {"now": NOW})
            conn.execute(sa.text(
                "INSERT INTO budget_usage (id, budget_id, access_id, period_start, used_minor)"
                " VALUES ('g1', 'b1', '', '2026-12-01', 2500)"))
            conn.execute(sa.text(
                "INSERT INTO purchases (id, unit_id, account_id, access_id, client_id,"
                " order_ref, currency, amount_minor, lines, status, reason, charges,"
                " created_at, updated_at) VALUES ('p1', 'u1', 'a1', NULL, 'c1', 'PO-1', 'EUR',"
                " 2500, '[]', 'approved', NULL, '[]', :now, :now)"), {"now": NOW})
            assert conn.execute(sa.text("SELECT used_minor FROM budget_usage")).scalar() == 2500
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
            assert not TABLES & names
            columns = {c["name"] for c in sa.inspect(conn).get_columns("units")}
            assert "time_zone" not in columns
            assert conn.execute(sa.text("SELECT slug FROM units")).scalar() == "acme"
        command.upgrade(config, "head")
    finally:
        engine.dispose()
