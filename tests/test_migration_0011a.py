"""Migration 0011a (approval policies and chains) on a database that revision 0011m
created and filled, on SQLite and PostgreSQL: the tables appear, an existing unit takes
a policy; downgrade drops them and leaves the unit."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from idp.store import migrate

PREVIOUS = "0011m"
THIS = "0011a"
NOW = "2026-12-06 10:00:00+00:00"
TABLES = {"approval_policies", "approval_chains"}


def test_upgrade_adds_the_policy_tables_and_downgrade_drops_them(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO units (id, name, slug, kind, require_totp, created_at,"
                " fresh_code_every_sign_in) VALUES ('u1', 'Acme', 'acme', 'company', false,"
                " :now, false)"), {"now": NOW})
        command.upgrade(config, THIS)
        with engine.begin() as conn:
            assert set(sa.inspect(conn).get_table_names()) >= TABLES
            conn.execute(sa.text(
                "INSERT INTO approval_policies (unit_id, currency, steps, expiry_hours,"
                " updated_at, updated_by) VALUES ('u1', 'EUR',"
                " '[{\"above_minor\": 50000, \"approvers\": \"manager\"}]', 48, :now, 'test')"),
                {"now": NOW})
            assert conn.execute(sa.text(
                "SELECT expiry_hours FROM approval_policies WHERE unit_id = 'u1'")).scalar() == 48
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            assert not TABLES & set(sa.inspect(conn).get_table_names())
            assert conn.execute(sa.text("SELECT slug FROM units")).scalar() == "acme"
        command.upgrade(config, "head")
    finally:
        engine.dispose()
