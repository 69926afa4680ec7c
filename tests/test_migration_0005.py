"""Migration 0005 (accesses with a status, employer facts per access) on a database
that revision 0004 created and filled like the code before it did, on SQLite and
PostgreSQL: memberships become active accesses with the account's facts (a directory's
facts only in the unit of that directory, the employee's own in every unit), the owners
of employer facts move with them, a suspended joined SCIM
record becomes a suspended access; everything else (SCIM records, LDAP links,
consents, grants) stays. Downgrade restores memberships and account columns, and
refuses (changing nothing) when it would lose data."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from idp.store import migrate

PREVIOUS = "0004"
NOW = "2026-12-05 10:00:00+00:00"
OWNERS = {"given_name": "scim", "cost_centre": "scim", "extra.ship_to": "ldap"}


def _account(conn: sa.Connection, account_id: str, email: str, **values: Any) -> None:
    row = {"cost_centre": None, "personnel_number": None, "department": None,
           "extra": {}, "field_owners": {}, **values}
    conn.execute(sa.text(
        "INSERT INTO accounts (id, email, email_verified, given_name, family_name,"
        " cost_centre, personnel_number, department, extra, field_owners, status,"
        " failed_code_attempts, version, created_at, updated_at) VALUES (:id, :email,"
        " true, 'Ann', 'A', :cc, :pn, :dep, :extra, :owners, 'active', 0, 1, :now, :now)"
    ), {"id": account_id, "email": email, "cc": row["cost_centre"],
        "pn": row["personnel_number"], "dep": row["department"],
        "extra": json.dumps(row["extra"]), "owners": json.dumps(row["field_owners"]),
        "now": NOW})


def fill_like_0004(url: str) -> None:
    """Two units; a1 in both with facts owned partly by SCIM and LDAP (one owner still
    in the legacy ``extra["field_owners"]``), provisioned by u1's SCIM and linked to
    u1's directory, with a consent and a grant; a2 joined u1's SCIM record that HR
    deactivated (suspended roles on the record, no membership) and is in u2; a3 has no
    unit at all."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for uid, slug in (("u1", "acme"), ("u2", "globex")):
            conn.execute(sa.text(
                "INSERT INTO units (id, name, slug, kind, require_totp, created_at)"
                " VALUES (:id, :slug, :slug, 'company', false, :now)"
            ), {"id": uid, "slug": slug, "now": NOW})
        _account(conn, "a1", "ann@acme.example", cost_centre="CC-1", personnel_number="P-7",
                 department="Sales",
                 extra={"ship_to": "Dock 1", "desk": "D-4",
                        "field_owners": {"department": "ldap"}},
                 field_owners=OWNERS)
        conn.execute(sa.text(  # only globex asks for a desk
            "INSERT INTO unit_profile_fields (id, unit_id, name, label, required, position)"
            " VALUES ('f1', 'u2', 'desk', 'Desk', false, 0)"
        ))
        _account(conn, "a2", "bob@own.example", cost_centre="CC-2")
        _account(conn, "a3", "cid@else.example", cost_centre="CC-3")
        for mid, account, unit, roles in (
            ("m1", "a1", "u1", ["employee", "main_user"]),
            ("m2", "a1", "u2", ["employee"]),
            ("m3", "a2", "u2", ["employee"]),
        ):
            conn.execute(sa.text(
                "INSERT INTO memberships (id, account_id, unit_id, roles, created_at)"
                " VALUES (:id, :account, :unit, :roles, :now)"
            ), {"id": mid, "account": account, "unit": unit, "roles": json.dumps(roles),
                "now": NOW})
        conn.execute(sa.text(
            "INSERT INTO scim_users (account_id, scim_id, unit_id, user_name, user_name_key,"
            " created_at) VALUES ('a1', 'a1', 'u1', 'ann', 'ann', :now)"
        ), {"now": NOW})
        conn.execute(sa.text(
            "INSERT INTO scim_users (account_id, scim_id, unit_id, user_name, user_name_key,"
            " joined_at, suspended_roles, created_at) VALUES ('a2', 's2', 'u1', 'bob', 'bob',"
            " :now, :roles, :now)"
        ), {"now": NOW, "roles": json.dumps(["employee", "buyer"])})
        conn.execute(sa.text(
            "INSERT INTO ldap_directories (id, unit_id, url, start_tls, bind_dn,"
            " bind_password_sealed, base_dn, user_filter, id_attribute, attribute_map,"
            " group_map, page_size, schedule_minutes, trust_email, login_enabled, created_at)"
            " VALUES ('d1', 'u1', 'ldap://x', false, 'cn=a', 'sealed', 'dc=x', '(uid=*)',"
            " 'uid', '{}', '{}', 100, 0, false, false, :now)"
        ), {"now": NOW})
        conn.execute(sa.text(
            "INSERT INTO ldap_links (id, directory_id, account_id, external_id, dn, state,"
            " deactivated_by_sync, last_seen_at) VALUES ('l1', 'd1', 'a1', 'x1', 'uid=ann',"
            " 'active', false, :now)"
        ), {"now": NOW})
        conn.execute(sa.text(
            "INSERT INTO consents (id, account_id, client_id, scopes, claims, granted_at,"
            " updated_at) VALUES ('c1', 'a1', 'shop', '[\"openid\"]', '[]', :now, :now)"
        ), {"now": NOW})
        conn.execute(sa.text(
            "INSERT INTO grants (id, account_id, client_id, unit_id, scope, auth_time, amr,"
            " created_at, expires_at) VALUES ('g1', 'a1', 'shop', 'u2', 'openid', :now,"
            " '[]', :now, :now)"
        ), {"now": NOW})
    engine.dispose()


def _j(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def accesses(engine: sa.Engine) -> dict[tuple[str, str], dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT account_id, unit_id, id, roles, status, created_by_kind, created_at,"
            " cost_centre, personnel_number, department, extra, field_owners FROM accesses"
        )).mappings().all()
    return {
        (r["account_id"], r["unit_id"]): {
            **dict(r), "roles": _j(r["roles"]), "extra": _j(r["extra"]),
            "field_owners": _j(r["field_owners"]),
        }
        for r in rows
    }


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() or 0)


def test_upgrade_moves_memberships_facts_and_suspensions_onto_accesses(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_0004(fresh_url)

    command.upgrade(config, "0005")
    engine = sa.create_engine(fresh_url)
    try:
        got = accesses(engine)
        assert set(got) == {("a1", "u1"), ("a1", "u2"), ("a2", "u2"), ("a2", "u1")}
        for row in (got[("a1", "u1")], got[("a1", "u2")]):
            assert (row["status"], row["created_by_kind"]) == ("active", "migration")
        # u1's SCIM and u1's directory set cost centre, department and ship_to: they
        # stay u1's; the employee's own personnel number goes to both units
        acme, globex = got[("a1", "u1")], got[("a1", "u2")]
        assert (acme["cost_centre"], acme["personnel_number"], acme["department"]) == (
            "CC-1", "P-7", "Sales")
        assert acme["extra"] == {"ship_to": "Dock 1"}  # globex alone defines "desk"
        assert acme["field_owners"] == {
            "cost_centre": "scim", "extra.ship_to": "ldap", "department": "ldap"}
        assert (globex["cost_centre"], globex["personnel_number"], globex["department"]) == (
            None, "P-7", None)
        assert (globex["extra"], globex["field_owners"]) == ({"desk": "D-4"}, {})
        assert got[("a1", "u1")]["id"] == "m1"
        assert got[("a1", "u1")]["roles"] == ["employee", "main_user"]
        suspended = got[("a2", "u1")]
        assert (suspended["status"], suspended["roles"]) == ("suspended", ["employee", "buyer"])
        assert suspended["cost_centre"] == "CC-2"
        assert got[("a2", "u2")]["status"] == "active"
        with engine.connect() as conn:
            owners = conn.execute(sa.text(
                "SELECT field_owners FROM accounts WHERE id = 'a1'")).scalar()
            assert _j(owners) == {"given_name": "scim"}  # personal owners stay
            columns = {c["name"] for c in sa.inspect(conn).get_columns("accounts")}
            assert not columns & {"cost_centre", "personnel_number", "department", "extra"}
            assert "suspended_roles" not in {
                c["name"] for c in sa.inspect(conn).get_columns("scim_users")}
        for table, n in (("scim_users", 2), ("ldap_links", 1), ("consents", 1), ("grants", 1),
                         ("accounts", 3)):
            assert count(engine, table) == n, table
    finally:
        engine.dispose()


def test_downgrade_restores_memberships_and_refuses_to_lose_data(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_0004(fresh_url)
    command.upgrade(config, "0005")
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:  # two units, two cost centres: 0004 has one
            conn.execute(sa.text(
                "UPDATE accesses SET cost_centre = 'CC-9' WHERE account_id = 'a1'"
                " AND unit_id = 'u2'"))
        with pytest.raises(RuntimeError, match="different facts"):
            command.downgrade(config, PREVIOUS)
        assert migrate.current_revision(fresh_url) == "0005"
        assert len(accesses(engine)) == 4
        with engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE accesses SET cost_centre = 'CC-1' WHERE account_id = 'a1'"))
            conn.execute(sa.text(
                "UPDATE accesses SET status = 'invited' WHERE account_id = 'a2'"
                " AND unit_id = 'u2'"))
        with pytest.raises(RuntimeError, match="invited"):
            command.downgrade(config, PREVIOUS)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE accesses SET status = 'active' WHERE status = 'invited'"))

        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            members = conn.execute(sa.text(
                "SELECT id, account_id, unit_id FROM memberships ORDER BY id")).all()
            assert [tuple(r) for r in members] == [
                ("m1", "a1", "u1"), ("m2", "a1", "u2"), ("m3", "a2", "u2")]
            a1 = conn.execute(sa.text(
                "SELECT cost_centre, department, extra, field_owners FROM accounts"
                " WHERE id = 'a1'")).one()
            assert (a1[0], a1[1], _j(a1[2])) == (
                "CC-1", "Sales", {"ship_to": "Dock 1", "desk": "D-4"})
            assert _j(a1[3]) == {"given_name": "scim", "cost_centre": "scim",
                                 "extra.ship_to": "ldap", "department": "ldap"}
            roles = conn.execute(sa.text(
                "SELECT suspended_roles FROM scim_users WHERE account_id = 'a2'")).scalar()
            assert _j(roles) == ["employee", "buyer"]
        command.upgrade(config, "0005")  # and up again, the same
        assert accesses(engine)[("a2", "u1")]["status"] == "suspended"
    finally:
        engine.dispose()
