"""Migration 0007 (customers' own data, access settings, admin API clients) on a
database that revision 0006 created and filled, on SQLite and PostgreSQL: existing
units become active customers with empty data, existing accesses keep platform
access, role-default notifications and no details sent; downgrade removes it all
and the rows survive both ways."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from idp.store import migrate

PREVIOUS = "0006"
THIS = "0007"
NOW = "2026-12-01 10:00:00+00:00"


def fill_like_previous(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO accounts (id, email, email_verified, given_name, family_name,"
            " field_owners, status, failed_code_attempts, version, created_at, updated_at)"
            " VALUES ('a1', 'ann@acme.example', true, 'Ann', 'A', '{}', 'active', 0, 1,"
            " :now, :now)"), {"now": NOW})
        conn.execute(sa.text(
            "INSERT INTO units (id, name, slug, kind, require_totp, created_at)"
            " VALUES ('u1', 'Acme', 'acme', 'company', false, :now)"), {"now": NOW})
        conn.execute(sa.text(
            "INSERT INTO accesses (id, account_id, unit_id, roles, status, created_at,"
            " created_by_kind, extra, field_owners) VALUES ('x1', 'a1', 'u1',"
            " '[\"main_user\"]', 'active', :now, 'system', '{}', '{}')"), {"now": NOW})
    engine.dispose()


def test_upgrade_keeps_rows_with_defaults_and_downgrade_restores(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)
    command.upgrade(config, THIS)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.connect() as conn:
            unit = conn.execute(sa.text(
                "SELECT status, address, vat_id, given_name, family_name FROM units")).one()
            assert (unit.status, unit.vat_id, unit.given_name, unit.family_name) == (
                "active", None, "", "")
            assert unit.address in ("{}", {})
            access = conn.execute(sa.text(
                "SELECT platform_access, notifications, details_sent_at FROM accesses")).one()
            assert bool(access.platform_access) is True
            assert access.notifications is None and access.details_sent_at is None
            assert conn.execute(sa.text("SELECT count(*) FROM admin_clients")).scalar() == 0
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("accesses")}
            assert "platform_access" not in columns
            assert "admin_clients" not in sa.inspect(conn).get_table_names()
            assert conn.execute(sa.text("SELECT roles FROM accesses")).scalar() in (
                '["main_user"]', ["main_user"])
        command.upgrade(config, "head")
    finally:
        engine.dispose()
