"""Migration 0010p (the unit policy passwords_allowed, password credentials) on a
database that revision 0009s created and filled, on SQLite and PostgreSQL: existing
units get the policy off, the table takes a credential; downgrade drops both and
keeps the accounts and units."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from idp.store import migrate

PREVIOUS = "0009s"
THIS = "0010p"
NOW = "2026-12-06 09:00:00+00:00"


def fill_like_previous(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO accounts (id, email, email_verified, given_name, family_name,"
            " field_owners, status, failed_code_attempts, version, created_at, updated_at,"
            " locale) VALUES ('a1', 'ann@acme.example', true, 'Ann', 'A', '{}', 'active',"
            " 0, 1, :now, :now, 'de-CH')"), {"now": NOW})
        conn.execute(sa.text(
            "INSERT INTO units (id, name, slug, kind, require_totp, fresh_code_every_sign_in,"
            " created_at) VALUES ('u1', 'Acme', 'acme', 'company', false, false, :now)"),
            {"now": NOW})
    engine.dispose()


def test_upgrade_adds_policy_and_credentials_and_downgrade_drops_them(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)
    command.upgrade(config, THIS)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            assert bool(conn.execute(sa.text(
                "SELECT passwords_allowed FROM units")).scalar()) is False
            conn.execute(sa.text(
                "INSERT INTO password_credentials (account_id, hash, status, updated_at,"
                " updated_by) VALUES ('a1', '$argon2id$v=19$m=8192,t=1,p=1$x$y', 'initial',"
                " :now, 'test')"), {"now": NOW})
            assert conn.execute(sa.text(
                "SELECT status FROM password_credentials")).scalar() == "initial"
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert "password_credentials" not in inspector.get_table_names()
            columns = {c["name"] for c in inspector.get_columns("units")}
            assert "passwords_allowed" not in columns
            assert conn.execute(sa.text("SELECT email FROM accounts")).scalar() == (
                "ann@acme.example")
            assert conn.execute(sa.text("SELECT slug FROM units")).scalar() == "acme"
        command.upgrade(config, "head")
    finally:
        engine.dispose()
