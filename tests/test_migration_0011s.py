"""Migration 0011s (accounts without an e-mail address) on a database that revision
0010b created and filled, on SQLite and PostgreSQL: existing accounts keep their
address, any number of accounts may then have none while an address stays unique,
the prefix indexes survive SQLite's table rebuild; downgrade gives each account
without an address an undeliverable one and makes the column required again."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from idp.store import migrate

PREVIOUS = "0011d"
THIS = "0011s"
NOW = "2026-12-06 10:00:00+00:00"
PREFIX_INDEXES = {"ix_accounts_email_prefix", "ix_accounts_given_name_prefix",
                  "ix_accounts_family_name_prefix"}


def insert_account(conn: sa.Connection, account_id: str, email: str | None) -> None:
    conn.execute(sa.text(
        "INSERT INTO accounts (id, email, email_verified, given_name, family_name,"
        " field_owners, status, failed_code_attempts, version, created_at, updated_at)"
        " VALUES (:id, :email, true, 'Ann', 'A', '{}', 'active', 0, 1, :now, :now)"),
        {"id": account_id, "email": email, "now": NOW})


def indexes(conn: sa.Connection) -> set[str]:
    if conn.dialect.name == "sqlite":
        rows = conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'index'"))
    else:
        rows = conn.execute(sa.text("SELECT indexname FROM pg_indexes"))
    return {r[0] for r in rows} & PREFIX_INDEXES


def test_upgrade_allows_accounts_without_email_and_downgrade_fills_them(
    fresh_url: str,
) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            insert_account(conn, "a1", "ann@acme.example")
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            insert_account(conn, "a0", None)  # 0010b: the address is required
        command.upgrade(config, THIS)
        with engine.begin() as conn:
            assert conn.execute(sa.text(
                "SELECT email FROM accounts WHERE id = 'a1'")).scalar() == "ann@acme.example"
            insert_account(conn, "a2", None)
            insert_account(conn, "a3", None)  # many without: NULLs do not clash
            assert indexes(conn) == PREFIX_INDEXES
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            insert_account(conn, "a4", "ann@acme.example")  # an address stays unique
        command.downgrade(config, PREVIOUS)
        with engine.begin() as conn:
            rows = dict(conn.execute(sa.text("SELECT id, email FROM accounts")).all())
            assert rows == {"a1": "ann@acme.example",
                            "a2": "no-email-a2@pending.invalid",
                            "a3": "no-email-a3@pending.invalid"}
            assert indexes(conn) == PREFIX_INDEXES
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            insert_account(conn, "a5", None)
        command.upgrade(config, "head")
    finally:
        engine.dispose()
