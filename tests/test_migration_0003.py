"""Migration 0003 (custom permission groups as rows, staff tables) on a database that
revision 0002 created and filled, on SQLite and PostgreSQL: upgrade moves every unit's
group names into ``permission_groups`` rows (memberships keep using them as roles),
downgrade rebuilds the column and refuses (losing nothing) while a group grants
permissions or a staff member exists."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from alembic import command

from idp.store import migrate

NOW = "2026-12-01 10:00:00+00:00"


def fill_like_0002(url: str) -> None:
    """What the 0002 code wrote: a company with two groups, a sub-unit with none, a
    unit with one, and members holding the groups as roles."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for uid, slug, parent, groups in (
            ("u1", "acme", None, ["buyers", "approvers"]),
            ("u2", "acme-sales", "u1", []),
            ("u3", "globex", None, ["buyers"]),
        ):
            conn.execute(sa.text(
                "INSERT INTO units (id, name, slug, kind, parent_id, permission_groups,"
                " require_totp, created_at) VALUES (:id, :slug, :slug, 'company', :parent,"
                " :groups, false, :now)"
            ), {"id": uid, "slug": slug, "parent": parent, "groups": json.dumps(groups),
                "now": NOW})
        conn.execute(sa.text(
            "INSERT INTO accounts (id, email, email_verified, given_name, family_name,"
            " extra, field_owners, status, failed_code_attempts, version, created_at,"
            " updated_at) VALUES ('a1', 'ann@acme.example', true, 'Ann', 'A', '{}', '{}',"
            " 'active', 0, 1, :now, :now)"
        ), {"now": NOW})
        for mid, unit, roles in (("m1", "u1", ["employee", "buyers"]), ("m3", "u3", ["buyers"])):
            conn.execute(sa.text(
                "INSERT INTO memberships (id, account_id, unit_id, roles, created_at)"
                " VALUES (:id, 'a1', :unit, :roles, :now)"
            ), {"id": mid, "unit": unit, "roles": json.dumps(roles), "now": NOW})
    engine.dispose()


def groups(conn: sa.Connection) -> list[tuple[str, str, list[str]]]:
    rows = conn.execute(sa.text(
        "SELECT unit_id, name, permissions FROM permission_groups ORDER BY unit_id, name"
    )).all()
    return [(r[0], r[1], r[2] if isinstance(r[2], list) else json.loads(r[2])) for r in rows]


def column(conn: sa.Connection) -> dict[str, list[str]]:
    rows = conn.execute(sa.text("SELECT id, permission_groups FROM units")).all()
    return {r[0]: r[1] if isinstance(r[1], list) else json.loads(r[1]) for r in rows}


def test_upgrade_moves_group_names_into_rows_and_downgrade_restores_the_column(
    fresh_url: str,
) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, "0002")
    fill_like_0002(fresh_url)

    command.upgrade(config, "0003")
    engine = sa.create_engine(fresh_url)
    try:
        with engine.connect() as conn:
            assert groups(conn) == [
                ("u1", "approvers", []), ("u1", "buyers", []), ("u3", "buyers", []),
            ]
            assert "permission_groups" not in {
                c["name"] for c in sa.inspect(conn).get_columns("units")
            }
            raw = conn.execute(sa.text("SELECT roles FROM memberships WHERE id = 'm1'")).scalar()
            assert (raw if isinstance(raw, list) else json.loads(raw)) == ["employee", "buyers"]
            assert conn.execute(sa.text("SELECT count(*) FROM memberships")).scalar() == 2

        command.downgrade(config, "0002")  # nothing beyond names: lossless
        with engine.connect() as conn:
            assert column(conn) == {
                "u1": ["approvers", "buyers"], "u2": [], "u3": ["buyers"],
            }
            assert conn.execute(sa.text("SELECT count(*) FROM memberships")).scalar() == 2
            assert "permission_groups" not in sa.inspect(conn).get_table_names()

        command.upgrade(config, "head")
        with engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE permission_groups SET permissions = '[\"orders.create\"]'"
                " WHERE unit_id = 'u3'"
            ))
        with pytest.raises(RuntimeError, match="grant permissions"):
            command.downgrade(config, "0002")
        with engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE permission_groups SET permissions = '[]' WHERE unit_id = 'u3'"
            ))
            conn.execute(sa.text(
                "INSERT INTO staff_members (account_id, added_at, added_by)"
                " VALUES ('a1', :now, 'test')"
            ), {"now": NOW})
        with pytest.raises(RuntimeError, match="staff"):
            command.downgrade(config, "0002")
        with engine.connect() as conn:
            assert len(groups(conn)) == 3
            assert conn.execute(sa.text("SELECT count(*) FROM staff_members")).scalar() == 1
    finally:
        engine.dispose()
