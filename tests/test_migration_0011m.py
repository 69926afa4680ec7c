"""Migration 0011m (merchant webhook endpoints) on a database that revision 0010b
created and filled, on SQLite and PostgreSQL: a unit's endpoint and its delivery stay
valid; an endpoint of a client can be added, one with neither or both owners is
refused; deleting the client deletes its endpoint; downgrade removes merchant
endpoints and the column and keeps the unit's."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from idp.store import migrate
from tests.test_migration_0009s import fill_like_previous

PREVIOUS = "0010b"
THIS = "0011m"
NOW = "2026-12-06 10:00:00+00:00"


def _endpoint(conn: sa.Connection, id_: str, unit: str | None, client: str | None) -> None:
    cols = "id, unit_id, url, events, description, enabled, secret_sealed, created_at, created_by"
    values = ":id, :unit, 'https://hooks.example/x', NULL, '', true, 's', :now, 'test'"
    params = {"id": id_, "unit": unit, "now": NOW}
    if client is not None or unit is None:
        cols += ", client_id"
        values += ", :client"
        params["client"] = client
    conn.execute(sa.text(f"INSERT INTO webhook_endpoints ({cols}) VALUES ({values})"), params)


def test_upgrade_adds_merchant_endpoints_and_downgrade_removes_them(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            _endpoint(conn, "w1", "u1", None)
            conn.execute(sa.text(
                "INSERT INTO webhook_deliveries (id, endpoint_id, unit_id, event_type, body,"
                " timestamp, status, attempts, next_attempt_at, created_at) VALUES ('msg_1',"
                " 'w1', 'u1', 'access.created', '{}', 0, 'sent', 1, :now, :now)"),
                {"now": NOW})
        command.upgrade(config, THIS)
        with engine.begin() as conn:
            assert conn.execute(sa.text(
                "SELECT client_id FROM webhook_endpoints WHERE id = 'w1'")).one() == (None,)
            conn.execute(sa.text(
                "INSERT INTO merchants (id, name, protocol, identifier, status, created_at)"
                " VALUES ('m1', 'Shop', 'oidc', 'shop', 'active', :now)"), {"now": NOW})
            conn.execute(sa.text(
                "INSERT INTO clients (id, client_id, merchant_id, name, redirect_uris,"
                " post_logout_redirect_uris, scope, grant_types, token_endpoint_auth_method,"
                " id_token_signed_response_alg, created_at) VALUES ('c1', 'shop', 'm1',"
                " 'Shop', '[]', '[]', 'openid purchases', '[]', 'client_secret_basic',"
                " 'ES256', :now)"), {"now": NOW})
            _endpoint(conn, "w2", None, "c1")
            conn.execute(sa.text(
                "INSERT INTO webhook_deliveries (id, endpoint_id, unit_id, event_type, body,"
                " timestamp, status, attempts, next_attempt_at, created_at) VALUES ('msg_2',"
                " 'w2', NULL, 'purchase.approved', '{}', 0, 'pending', 0, :now, :now)"),
                {"now": NOW})
        for unit, client in ((None, None), ("u1", "c1")):
            with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
                _endpoint(conn, "w3", unit, client)
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("webhook_endpoints")}
            assert "client_id" not in columns
            assert list(conn.execute(sa.text("SELECT id FROM webhook_endpoints"))) == [("w1",)]
            assert list(conn.execute(sa.text("SELECT id FROM webhook_deliveries"))) == [
                ("msg_1",)]
        command.upgrade(config, "head")
    finally:
        engine.dispose()
