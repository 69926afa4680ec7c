"""Migration 0008c (invitations) on a database that revision 0007 created and
filled, on SQLite and PostgreSQL: accounts, units and accesses survive, the new
table starts empty and takes an invitation; downgrade drops it and the rows stay."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from idp.store import migrate
from tests.test_migration_0007 import NOW, fill_like_previous

PREVIOUS = "0008b"
THIS = "0008c"


def test_upgrade_adds_an_empty_invitations_table_and_downgrade_removes_it(
    fresh_url: str,
) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, "0006")
    fill_like_previous(fresh_url)
    command.upgrade(config, PREVIOUS)
    command.upgrade(config, THIS)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM invitations")).scalar() == 0
            conn.execute(sa.text(
                "INSERT INTO invitations (id, access_id, account_id, unit_id, token_hash,"
                " attempts, expires_at, created_at, created_by) VALUES ('i1', 'x1', 'a1',"
                " 'u1', 'h', 0, :now, :now, 'system')"), {"now": NOW})
            assert conn.execute(sa.text("SELECT status FROM accesses")).scalar() == "active"
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            assert "invitations" not in sa.inspect(conn).get_table_names()
            assert conn.execute(sa.text("SELECT count(*) FROM accesses")).scalar() == 1
        command.upgrade(config, "head")
    finally:
        engine.dispose()
