"""Migrations 0012f (typed unit fields) and 0012c (consent per item) on a database
that revision 0012b created and filled, on SQLite and PostgreSQL: every existing
field becomes a text field the employee sets, without translations, its label and
stored values untouched; existing consents and grants
leave nothing out and existing clients keep the default required claims;
downgrade drops the new columns and keeps the rows."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import command

from idp.store import migrate
from tests.support.migrations import columns, insert_oidc_client
from tests.test_migration_0009s import fill_like_previous

PREVIOUS = "0012b"
FIELDS = "0012f"
CONSENTS = "0012c"
NOW = "2026-12-06 12:00:00+00:00"


def _fill(conn: sa.Connection) -> None:
    conn.execute(sa.text(
        "INSERT INTO unit_profile_fields (id, unit_id, name, label, required, position)"
        " VALUES ('f1', 'u1', 'purchase_limit', 'Purchase limit (EUR)', true, 0)"))
    conn.execute(sa.text(
        "INSERT INTO accesses (id, account_id, unit_id, roles, status, extra, field_owners,"
        " created_at, created_by_kind) VALUES ('x1', 'a1', 'u1', '[]', 'active',"
        " :extra, '{}', :now, 'system')"),
        {"extra": json.dumps({"purchase_limit": "lots of money"}), "now": NOW})
    insert_oidc_client(conn, NOW)
    conn.execute(sa.text(
        "INSERT INTO consents (id, account_id, merchant_id, scopes, claims, granted_at,"
        " updated_at) VALUES ('c1', 'a1', 'm1', '[\"openid\", \"wallet\"]',"
        " '[\"wallet_fields\"]', :now, :now)"), {"now": NOW})
    conn.execute(sa.text(
        "INSERT INTO grants (id, account_id, client_id, merchant_id, scope, auth_time, amr,"
        " created_at, expires_at) VALUES ('g1', 'a1', 'c1', 'm1', 'openid wallet', :now,"
        " '[]', :now, :now)"), {"now": NOW})


def test_fields_become_text_and_consents_leave_nothing_out(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)  # an account a1 and a unit u1, as 0009s left them
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:  # a field, a value, a consent and a grant of 0012b
            _fill(conn)
        command.upgrade(config, FIELDS)
        with engine.begin() as conn:
            row = conn.execute(sa.text(
                "SELECT name, label, required, type, currency, choices, labels, help, set_by"
                " FROM unit_profile_fields")).one()
            assert row[:5] == ("purchase_limit", "Purchase limit (EUR)", True, "text", None)
            assert [_json(v) for v in row[5:8]] == [[], {}, {}] and row[8] == "employee"
            extra = _json(conn.execute(sa.text("SELECT extra FROM accesses")).scalar())
            assert extra == {"purchase_limit": "lots of money"}  # text fits a text field
            conn.execute(sa.text(
                "INSERT INTO unit_profile_fields (id, unit_id, name, label, required, position,"
                " type, currency, choices, labels, help, set_by) VALUES ('f2', 'u1', 'seats',"
                " 'Seats', false, 1, 'number', NULL, '[]', '{}', '{}', 'company')"))
        command.upgrade(config, CONSENTS)
        with engine.begin() as conn:
            assert _json(conn.execute(sa.text("SELECT withheld FROM consents")).scalar()) == []
            assert _json(conn.execute(sa.text("SELECT withheld FROM grants")).scalar()) == []
            assert conn.execute(sa.text("SELECT required_claims FROM clients")).scalar() is None
            conn.execute(sa.text("UPDATE consents SET withheld = '[\"phone_number\"]'"))
        command.downgrade(config, FIELDS)
        with engine.begin() as conn:
            assert "withheld" not in columns(conn, "consents")
            assert "withheld" not in columns(conn, "grants")
            assert "required_claims" not in columns(conn, "clients")
            assert conn.execute(sa.text("SELECT count(*) FROM consents")).scalar() == 1
        command.downgrade(config, PREVIOUS)
        with engine.begin() as conn:
            assert "type" not in columns(conn, "unit_profile_fields")
            names = conn.execute(sa.text(
                "SELECT name FROM unit_profile_fields ORDER BY position")).scalars().all()
            assert names == ["purchase_limit", "seats"]
        command.upgrade(config, "head")
    finally:
        engine.dispose()


def _json(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value
