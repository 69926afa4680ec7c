"""Migration 0010o (instance_secrets) on a database that revision 0010w created and
filled, on SQLite and PostgreSQL: existing rows untouched, the table exists and takes
a sealed value; downgrade drops it."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from idp.store import migrate

PREVIOUS = "0010w"
THIS = "0010o"
NOW = "2026-12-06 09:00:00+00:00"


def test_upgrade_adds_instance_secrets_and_downgrade_drops_it(fresh_url: str) -> None:
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
            assert conn.execute(sa.text("SELECT slug FROM units")).scalar() == "acme"
            conn.execute(sa.text(
                "INSERT INTO instance_secrets (name, value_sealed, created_at)"
                " VALUES ('keyed-hash', 'v1.x', :now)"), {"now": NOW})
            assert conn.execute(sa.text(
                "SELECT value_sealed FROM instance_secrets")).scalar() == "v1.x"
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            assert "instance_secrets" not in sa.inspect(conn).get_table_names()
            assert conn.execute(sa.text("SELECT slug FROM units")).scalar() == "acme"
        command.upgrade(config, "head")
    finally:
        engine.dispose()
