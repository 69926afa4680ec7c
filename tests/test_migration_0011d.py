"""Migration 0011d (clients.require_pushed_authorization_requests,
clients.dpop_bound_access_tokens, grants.dpop_jkt) on a database that revision 0011k
created and filled, on SQLite and PostgreSQL: an existing client gets both options
off, the columns take values; downgrade drops them and keeps the client."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from idp.store import migrate
from tests.support.migrations import insert_oidc_client
from tests.test_migration_0009s import fill_like_previous

PREVIOUS = "0011k"
THIS = "0011d"
NOW = "2026-12-06 10:10:00+00:00"


def test_upgrade_adds_fapi_options_and_downgrade_removes_them(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            insert_oidc_client(conn, NOW)
        command.upgrade(config, THIS)
        with engine.begin() as conn:
            row = conn.execute(sa.text(
                "SELECT require_pushed_authorization_requests, dpop_bound_access_tokens"
                " FROM clients")).one()
            assert (bool(row[0]), bool(row[1])) == (False, False)
            conn.execute(sa.text("UPDATE clients SET dpop_bound_access_tokens = true"))
            grant_columns = {c["name"] for c in sa.inspect(conn).get_columns("grants")}
            assert "dpop_jkt" in grant_columns
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("clients")}
            assert not {"require_pushed_authorization_requests",
                        "dpop_bound_access_tokens"} & columns
            grant_columns = {c["name"] for c in sa.inspect(conn).get_columns("grants")}
            assert "dpop_jkt" not in grant_columns
            assert conn.execute(sa.text("SELECT client_id FROM clients")).scalar() == "c1"
        command.upgrade(config, "head")
    finally:
        engine.dispose()
