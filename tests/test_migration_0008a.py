"""Migration 0008a (the index of a customer's tree) on a database that revision 0007
created and filled, on SQLite and PostgreSQL: the rows survive both ways and the
index comes and goes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from idp.store import migrate
from tests.test_migration_0007 import fill_like_previous

PREVIOUS = "0007"
THIS = "0008a"


def _indexes(conn: sa.Connection) -> set[str]:
    inspector = sa.inspect(conn)
    return {i["name"] for i in inspector.get_indexes("units") if i["name"]}


def test_upgrade_adds_the_index_and_downgrade_removes_it(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, "0006")
    fill_like_previous(fresh_url)  # rows of the shape 0007 keeps
    command.upgrade(config, PREVIOUS)
    command.upgrade(config, THIS)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.connect() as conn:
            assert "ix_units_parent_id" in _indexes(conn)
            assert conn.execute(sa.text("SELECT unit_id FROM accesses")).scalar() == "u1"
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            assert "ix_units_parent_id" not in _indexes(conn)
            assert conn.execute(sa.text("SELECT count(*) FROM units")).scalar() == 1
        command.upgrade(config, "head")
    finally:
        engine.dispose()
