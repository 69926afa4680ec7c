"""Migration 0012b (brandings) on a database that revision 0011l created and filled, on
SQLite and PostgreSQL: the table appears and takes a merchant's and a unit's branding
(exactly one owner each); downgrade drops it and keeps the merchants and units."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from idp.store import migrate
from tests.test_migration_0009s import fill_like_previous

PREVIOUS = "0011l"
THIS = "0012b"
NOW = "2026-12-06 12:30:00+00:00"


def test_upgrade_adds_brandings_and_downgrade_drops_them(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO merchants (id, name, protocol, identifier, status, created_at)"
                " VALUES ('m1', 'Shop', 'oidc', 'c1', 'active', :now)"), {"now": NOW})
            unit_id = conn.execute(sa.text("SELECT id FROM units LIMIT 1")).scalar()
            units = conn.execute(sa.text("SELECT count(*) FROM units")).scalar()
        command.upgrade(config, THIS)
        with engine.begin() as conn:
            assert "brandings" in sa.inspect(conn).get_table_names()
            conn.execute(sa.text(
                "INSERT INTO brandings (id, merchant_id, logo, logo_type, logo_sha256,"
                " logo_width, logo_height, primary_color, updated_at) VALUES ('b1', 'm1',"
                " :logo, 'image/png', 'ab', 1, 1, '#114488', :now)"),
                {"logo": b"\x89PNG", "now": NOW})
            if unit_id is not None:
                conn.execute(sa.text(
                    "INSERT INTO brandings (id, unit_id, updated_at) VALUES ('b2', :u, :now)"),
                    {"u": unit_id, "now": NOW})
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO brandings (id, updated_at) VALUES ('b3', :now)"), {"now": NOW})
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            assert "brandings" not in sa.inspect(conn).get_table_names()
            assert conn.execute(sa.text("SELECT count(*) FROM merchants")).scalar() == 1
            assert conn.execute(sa.text("SELECT count(*) FROM units")).scalar() == units
        command.upgrade(config, "head")
    finally:
        engine.dispose()
