"""Migration 0010i (impersonation) on a database that revision 0010p created and
filled, on SQLite and PostgreSQL: existing units get ``notify_impersonation`` on,
sessions and grants get ``impersonation_id`` empty, the ``impersonations`` table
takes a row; downgrade drops all of it and keeps the rest."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from idp.store import migrate

PREVIOUS = "0010p"
THIS = "0010i"
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
            "INSERT INTO units (id, name, slug, kind, require_totp, created_at,"
            " fresh_code_every_sign_in) VALUES ('u1', 'Acme', 'acme', 'company', false, :now,"
            " false)"), {"now": NOW})
        conn.execute(sa.text(
            "INSERT INTO sessions (id_hash, account_id, auth_time, amr, created_at,"
            " last_seen_at, expires_at) VALUES ('s1', 'a1', :now, '[]', :now, :now, :now)"),
            {"now": NOW})
    engine.dispose()


def test_upgrade_adds_impersonation_and_downgrade_removes_it(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)
    command.upgrade(config, THIS)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            assert bool(conn.execute(sa.text(
                "SELECT notify_impersonation FROM units")).scalar()) is True
            assert conn.execute(sa.text(
                "SELECT impersonation_id FROM sessions")).scalar() is None
            grant_columns = {c["name"] for c in sa.inspect(conn).get_columns("grants")}
            assert "impersonation_id" in grant_columns
            conn.execute(sa.text(
                "INSERT INTO impersonations (id, unit_id, target_account_id, actor_kind,"
                " actor_account_id, reason, started_at, ends_at) VALUES ('i1', 'u1', 'a1',"
                " 'account', 'a1', 'why', :now, :now)"), {"now": NOW})
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert "impersonations" not in inspector.get_table_names()
            assert "notify_impersonation" not in {
                c["name"] for c in inspector.get_columns("units")}
            assert "impersonation_id" not in {
                c["name"] for c in inspector.get_columns("sessions")}
            assert "impersonation_id" not in {
                c["name"] for c in inspector.get_columns("grants")}
            assert conn.execute(sa.text("SELECT email FROM accounts")).scalar() == (
                "ann@acme.example")
            assert conn.execute(sa.text("SELECT count(*) FROM sessions")).scalar() == 1
        command.upgrade(config, "head")
    finally:
        engine.dispose()
