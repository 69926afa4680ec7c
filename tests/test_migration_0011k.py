"""Migration 0011k (passkeys: ``passkey_handles``, ``passkey_credentials``,
``units.passkey_counts_as_fresh``) on a database that revision 0011a created and
filled, on SQLite and PostgreSQL: existing units get the policy off, the tables take a
passkey (a duplicate credential id is refused, deleting the account removes it);
downgrade drops the tables and the column and keeps the units."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from idp.store import migrate

PREVIOUS = "0011a"
THIS = "0011k"
NOW = "2026-12-06 07:00:00+00:00"


def fill_like_previous(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO accounts (id, email, email_verified, given_name, family_name,"
            " field_owners, status, failed_code_attempts, version, created_at, updated_at,"
            " locale) VALUES ('a1', 'ann@acme.example', true, 'Ann', 'A', '{}', 'active',"
            " 0, 1, :now, :now, 'de')"), {"now": NOW})
        conn.execute(sa.text(
            "INSERT INTO units (id, name, slug, kind, require_totp, created_at)"
            " VALUES ('u1', 'Acme', 'acme', 'company', false, :now)"), {"now": NOW})
    engine.dispose()


def add_passkey(conn: sa.Connection, row_id: str, credential_id: str) -> None:
    conn.execute(sa.text(
        "INSERT INTO passkey_credentials (id, account_id, credential_id, public_key,"
        " sign_count, name, aaguid, backup_eligible, backup_state, created_at)"
        " VALUES (:id, 'a1', :cid, 'pk', 0, 'Laptop', '', false, false, :now)"),
        {"id": row_id, "cid": credential_id, "now": NOW})


def test_upgrade_adds_passkeys_and_policy_and_downgrade_removes_them(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)
    command.upgrade(config, THIS)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.execute(sa.text("PRAGMA foreign_keys=ON"))
            assert bool(conn.execute(sa.text(
                "SELECT passkey_counts_as_fresh FROM units")).scalar()) is False
            conn.execute(sa.text(
                "INSERT INTO passkey_handles (account_id, handle, created_at)"
                " VALUES ('a1', 'h1', :now)"), {"now": NOW})
            add_passkey(conn, "p1", "c1")
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            add_passkey(conn, "p2", "c1")
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.execute(sa.text("PRAGMA foreign_keys=ON"))
            conn.execute(sa.text("DELETE FROM accounts WHERE id = 'a1'"))
            assert conn.execute(sa.text(
                "SELECT count(*) FROM passkey_credentials")).scalar() == 0
            assert conn.execute(sa.text("SELECT count(*) FROM passkey_handles")).scalar() == 0
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert "passkey_credentials" not in inspector.get_table_names()
            assert "passkey_handles" not in inspector.get_table_names()
            columns = {c["name"] for c in inspector.get_columns("units")}
            assert "passkey_counts_as_fresh" not in columns
            assert conn.execute(sa.text("SELECT slug FROM units")).scalar() == "acme"
        command.upgrade(config, "head")
    finally:
        engine.dispose()
