"""Migration 0012t (``connector_id_ledger``: a deleted connector's id is never given
again) on a database that revision 0012s created and filled, on SQLite and
PostgreSQL: the ledger holds the ids of the existing connectors and of the
connectors the audit log shows created or deleted before, refuses a second entry of
an id, and downgrade drops it and keeps the connectors."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from idp.store import migrate
from tests.test_migration_0009s import fill_like_previous

PREVIOUS = "0012s"
THIS = "0012t"
NOW = "2026-12-06 15:30:00+00:00"
LIVE = "c" * 32
GONE = "d" * 32


def fill_connectors(url: str) -> None:
    """A live connector of unit u1, and the audit trail of one deleted before."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO connectors (id, unit_id, kind, name, settings, enabled,"
            " created_at, updated_at) VALUES (:id, 'u1', 'google', 'Google', '{}', true,"
            " :now, :now)"), {"id": LIVE, "now": NOW})
        for seq, (action, target) in enumerate([("connector.create", LIVE),
                                                ("connector.create", GONE),
                                                ("connector.delete", GONE),
                                                ("unit.update", "u1")], start=1):
            conn.execute(sa.text(
                "INSERT INTO audit_events (id, at, actor, actor_kind, unit_id, action, target,"
                " details) VALUES (:id, :now, 'admin', 'operator', 'u1', :action, :target,"
                " '{}')"), {"id": f"e{seq}", "now": NOW, "action": action, "target": target})
    engine.dispose()


def test_upgrade_fills_the_ledger_and_downgrade_drops_it(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)
    fill_connectors(fresh_url)
    command.upgrade(config, THIS)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            rows = conn.execute(sa.text(
                "SELECT id, unit_id FROM connector_id_ledger ORDER BY id")).all()
            assert [tuple(r) for r in rows] == [(LIVE, "u1"), (GONE, "u1")]
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO connector_id_ledger (id, unit_id, created_at)"
                " VALUES (:id, 'u2', :now)"), {"id": GONE, "now": NOW})
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            assert "connector_id_ledger" not in sa.inspect(conn).get_table_names()
            assert conn.execute(sa.text("SELECT id FROM connectors")).scalar() == LIVE
        command.upgrade(config, "head")
    finally:
        engine.dispose()
