"""Migration 0012b (brandings) on a database that revision 0011l created and filled, on
SQLite and PostgreSQL: the table appears and takes a merchant's and a unit's branding
(exactly one owner each); downgrade drops it and keeps the merchants and units."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from idp.store import migrate
from tests.test_migration_0009s import fill_like_previous

BEFORE, AFTER = "0011l", "0012b"
STAMP = {"now": "2026-12-06 12:30:00+00:00"}
MERCHANT = ("INSERT INTO merchants (id, name, protocol, identifier, status, created_at)"
            " VALUES ('m-brand', 'Paper Co', 'saml', 'https://paper.example', 'active', :now)")
MERCHANT_LOGO = ("INSERT INTO brandings (id, merchant_id, logo, logo_type, logo_sha256,"
                 " logo_width, logo_height, primary_color, updated_at) VALUES ('b1', 'm-brand',"
                 " :logo, 'image/png', 'ab', 16, 16, '#114488', :now)")
UNIT_LOGO = "INSERT INTO brandings (id, unit_id, updated_at) VALUES ('b2', :unit, :now)"
NO_OWNER = "INSERT INTO brandings (id, updated_at) VALUES ('b3', :now)"


def _counts(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        merchants = conn.execute(sa.text("SELECT count(*) FROM merchants")).scalar_one()
        units = conn.execute(sa.text("SELECT count(*) FROM units")).scalar_one()
    return merchants, units


def test_brandings_come_with_the_upgrade_and_go_with_the_downgrade(fresh_url: str) -> None:
    alembic = migrate.alembic_config(fresh_url)
    command.upgrade(alembic, BEFORE)
    fill_like_previous(fresh_url)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(MERCHANT), STAMP)
            unit = conn.execute(sa.text("SELECT min(id) FROM units")).scalar()
        kept = _counts(engine)
        command.upgrade(alembic, AFTER)
        with engine.begin() as conn:
            conn.execute(sa.text(MERCHANT_LOGO), {**STAMP, "logo": b"\x89PNG"})
            if unit is not None:
                conn.execute(sa.text(UNIT_LOGO), {**STAMP, "unit": unit})
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.text(NO_OWNER), STAMP)  # one owner, always
        command.downgrade(alembic, BEFORE)
        with engine.connect() as conn:
            assert "brandings" not in sa.inspect(conn).get_table_names()
        assert _counts(engine) == kept
        command.upgrade(alembic, "head")
    finally:
        engine.dispose()
