"""Migration 0009s (locale as a full BCP 47 tag, the unit policy
fresh_code_every_sign_in, grants.claims_request) on a database that revision 0008c
created and filled, on SQLite and PostgreSQL: a 35-character locale fits afterwards,
existing units get the policy off, grants get the column; downgrade shortens long tags
at a subtag boundary and drops both columns."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from idp.store import migrate

PREVIOUS = "0009p"
THIS = "0009s"
NOW = "2026-12-06 07:00:00+00:00"
LONG_TAG = "sr-Latn-RS-u-nu-latn-x-private1234"  # 34 characters


def fill_like_previous(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO accounts (id, email, email_verified, given_name, family_name,"
            " field_owners, status, failed_code_attempts, version, created_at, updated_at,"
            " locale) VALUES ('a1', 'ann@acme.example', true, 'Ann', 'A', '{}', 'active',"
            " 0, 1, :now, :now, 'de-CH')"), {"now": NOW})
        conn.execute(sa.text(
            "INSERT INTO units (id, name, slug, kind, require_totp, created_at)"
            " VALUES ('u1', 'Acme', 'acme', 'company', false, :now)"), {"now": NOW})
    engine.dispose()


def test_upgrade_widens_locale_adds_policy_and_downgrade_restores(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)
    command.upgrade(config, THIS)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT locale FROM accounts")).scalar() == "de-CH"
            assert bool(conn.execute(sa.text(
                "SELECT fresh_code_every_sign_in FROM units")).scalar()) is False
            grant_columns = {c["name"] for c in sa.inspect(conn).get_columns("grants")}
            assert "claims_request" in grant_columns
            conn.execute(sa.text("UPDATE accounts SET locale = :tag"), {"tag": LONG_TAG})
            assert conn.execute(sa.text("SELECT locale FROM accounts")).scalar() == LONG_TAG
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("units")}
            assert "fresh_code_every_sign_in" not in columns
            grant_columns = {c["name"] for c in sa.inspect(conn).get_columns("grants")}
            assert "claims_request" not in grant_columns
            assert conn.execute(sa.text("SELECT locale FROM accounts")).scalar() == "sr-Latn-RS"
            assert conn.execute(sa.text("SELECT email FROM accounts")).scalar() == (
                "ann@acme.example")
        command.upgrade(config, "head")
    finally:
        engine.dispose()


def test_the_account_prefix_indexes_survive_the_table_rebuild(fresh_url: str) -> None:
    """SQLite rebuilds ``accounts`` to widen ``locale`` and cannot carry 0008b's
    expression indexes over by itself: they exist after upgrade and after downgrade."""
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, THIS)
    wanted = {"ix_accounts_email_prefix", "ix_accounts_given_name_prefix",
              "ix_accounts_family_name_prefix"}

    def present() -> set[str]:
        engine = sa.create_engine(fresh_url)
        try:
            with engine.connect() as conn:
                if conn.dialect.name == "sqlite":
                    rows = conn.execute(sa.text(
                        "SELECT name FROM sqlite_master WHERE type = 'index'")).all()
                else:
                    rows = conn.execute(sa.text("SELECT indexname FROM pg_indexes")).all()
                return {r[0] for r in rows} & wanted
        finally:
            engine.dispose()

    assert present() == wanted
    command.downgrade(config, PREVIOUS)
    assert present() == wanted
    command.upgrade(config, "head")
