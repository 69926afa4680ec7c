"""Migration 0010w (webhook endpoints, deliveries, attempts) on a database that
revision 0010i created and filled, on SQLite and PostgreSQL: the tables appear,
existing units take an endpoint with deliveries and attempts; downgrade drops them
and leaves the units alone."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from idp.store import migrate

PREVIOUS = "0010i"
THIS = "0010w"
NOW = "2026-12-06 09:00:00+00:00"
TABLES = {"webhook_endpoints", "webhook_deliveries", "webhook_attempts"}


def test_upgrade_adds_the_webhook_tables_and_downgrade_drops_them(fresh_url: str) -> None:
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
                "INSERT INTO webhook_endpoints (id, unit_id, url, description, enabled,"
                " secret_sealed, created_at, created_by) VALUES ('e1', 'u1',"
                " 'https://r.example/h', '', true, 'sealed', :now, 'test')"), {"now": NOW})
            conn.execute(sa.text(
                "INSERT INTO webhook_deliveries (id, endpoint_id, unit_id, event_type, body,"
                " timestamp, status, attempts, next_attempt_at, created_at) VALUES"
                " ('msg_1', 'e1', 'u1', 'access.created', '{}', 1, 'pending', 0, :now, :now)"),
                {"now": NOW})
            conn.execute(sa.text(
                "INSERT INTO webhook_attempts (id, delivery_id, endpoint_id, at, status_code,"
                " duration_ms) VALUES ('a1', 'msg_1', 'e1', :now, 503, 12)"), {"now": NOW})
            with_unit = conn.execute(sa.text(
                "SELECT count(*) FROM webhook_endpoints WHERE unit_id = 'u1'")).scalar()
            assert with_unit == 1
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            assert not TABLES & set(sa.inspect(conn).get_table_names())
            assert conn.execute(sa.text("SELECT slug FROM units")).scalar() == "acme"
        command.upgrade(config, "head")
    finally:
        engine.dispose()
