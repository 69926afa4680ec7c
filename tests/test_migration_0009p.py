"""Migration 0009p (indexes of the customer list) on a database that revision 0008c
created and filled, on SQLite and PostgreSQL: the rows survive, the name and
sign-in indexes exist, downgrade drops them again."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from idp.store import migrate
from tests.test_migration_0007 import fill_like_previous
from tests.test_migration_0008b import _indexes

PREVIOUS = "0008c"
THIS = "0009p"
ACCESS_INDEXES = {"ix_accesses_unit_signin", "ix_accesses_last_signin"}


def test_upgrade_adds_the_indexes_and_downgrade_drops_them(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)
    command.upgrade(config, THIS)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.connect() as conn:
            assert "ix_units_name" in _indexes(conn, "units")
            assert _indexes(conn, "accesses") >= ACCESS_INDEXES
            assert conn.execute(sa.text("SELECT count(*) FROM accesses")).scalar() == 1
            assert conn.execute(sa.text("SELECT name FROM units")).scalar() == "Acme"
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            assert "ix_units_name" not in _indexes(conn, "units")
            assert not ACCESS_INDEXES & _indexes(conn, "accesses")
            assert conn.execute(sa.text("SELECT count(*) FROM accesses")).scalar() == 1
        command.upgrade(config, "head")
    finally:
        engine.dispose()
