"""Migration 0012m (``clients.jwks_uri``) on a database that revision 0012l created and
filled, on SQLite and PostgreSQL: existing clients keep their keys and get no URI;
a client can then name one; downgrade drops the column and keeps the clients."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from idp.store import migrate
from tests.test_migration_0009s import fill_like_previous

PREVIOUS = "0012l"
THIS = "0012m"
NOW = "2026-12-06 12:45:00+00:00"


def insert_client(conn: sa.Connection, client_id: str) -> None:
    conn.execute(sa.text(
        "INSERT INTO merchants (id, name, protocol, identifier, status, created_at)"
        " VALUES (:m, 'Shop', 'oidc', :c, 'active', :now)"), {"m": "m" + client_id,
                                                              "c": client_id, "now": NOW})
    conn.execute(sa.text(
        "INSERT INTO clients (id, client_id, merchant_id, name, redirect_uris,"
        " post_logout_redirect_uris, scope, grant_types, token_endpoint_auth_method, jwks,"
        " id_token_signed_response_alg, created_at) VALUES (:id, :c, :m, 'Shop', '[]', '[]',"
        " 'openid', '[]', 'private_key_jwt', '{\"keys\": []}', 'ES256', :now)"),
        {"id": "k" + client_id, "c": client_id, "m": "m" + client_id, "now": NOW})


def test_upgrade_adds_jwks_uri_and_downgrade_drops_it(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            insert_client(conn, "c1")
        command.upgrade(config, THIS)
        with engine.begin() as conn:
            assert conn.execute(sa.text(
                "SELECT jwks_uri FROM clients WHERE client_id = 'c1'")).scalar() is None
            insert_client(conn, "c2")
            conn.execute(sa.text("UPDATE clients SET jwks = NULL,"
                                 " jwks_uri = 'https://shop.example/jwks' WHERE client_id = 'c2'"))
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("clients")}
            assert "jwks_uri" not in columns
            assert conn.execute(sa.text("SELECT count(*) FROM clients")).scalar() == 2
        command.upgrade(config, "head")
    finally:
        engine.dispose()
