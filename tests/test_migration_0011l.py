"""Migration 0011l (client logout channels, OIDC session participants, back-channel
logout queue) on a database that revision 0011s created and filled, on SQLite and
PostgreSQL: the tables appear and take rows for existing clients and sessions;
downgrade drops them and keeps the clients."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from idp.store import migrate
from tests.support.migrations import insert_oidc_client
from tests.test_migration_0009s import fill_like_previous

PREVIOUS = "0011s"
THIS = "0011l"
NOW = "2026-12-06 10:00:00+00:00"
TABLES = {"client_logout_channels", "oidc_session_participants", "backchannel_logouts"}


def test_upgrade_adds_the_logout_tables_and_downgrade_drops_them(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            insert_oidc_client(conn, NOW)
            conn.execute(sa.text(
                "INSERT INTO sessions (id_hash, account_id, auth_time, amr, created_at,"
                " last_seen_at, expires_at) VALUES ('h1', 'a1', :now, '[]', :now, :now, :now)"),
                {"now": NOW})
        command.upgrade(config, THIS)
        with engine.begin() as conn:
            assert set(sa.inspect(conn).get_table_names()) >= TABLES
            client_id, session = "c1", ("h1", "a1")
            conn.execute(sa.text(
                "INSERT INTO client_logout_channels (client_id, backchannel_logout_uri,"
                " backchannel_logout_session_required, frontchannel_logout_uri,"
                " frontchannel_logout_session_required, updated_at) VALUES (:c,"
                " 'https://rp.example/bc', true, NULL, false, :now)"),
                {"c": client_id, "now": NOW})
            conn.execute(sa.text(
                "INSERT INTO oidc_session_participants (id, session_id_hash, client_id,"
                " account_id, created_at) VALUES ('p1', :s, :c, :a, :now)"),
                {"s": session[0], "c": client_id, "a": session[1], "now": NOW})
            conn.execute(sa.text(
                "INSERT INTO backchannel_logouts (id, client_id, url, claims, alg, status,"
                " attempts, next_attempt_at, created_at) VALUES ('l1', :c,"
                " 'https://rp.example/bc', '{}', 'ES256', 'pending', 0, :now, :now)"),
                {"c": client_id, "now": NOW})
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            assert not TABLES & set(sa.inspect(conn).get_table_names())
            assert conn.execute(sa.text("SELECT count(*) FROM clients")).scalar() == 1
        command.upgrade(config, "head")
    finally:
        engine.dispose()
