"""Migration 0002 (SCIM records' own ids, pending addresses) on a database that
revision 0001 created and filled, on SQLite and PostgreSQL: upgrade keeps every SCIM id
the HR systems know, downgrade works while nothing needs the new columns and refuses
(losing nothing) once a record is pending."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from idp.store import migrate

NOW = "2026-11-30 10:00:00+00:00"


def fill_like_0001(url: str) -> None:
    """What the wave-1 code wrote: a unit, two accounts, both provisioned by SCIM."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO units (id, name, slug, kind, permission_groups, require_totp,"
            " created_at) VALUES ('u1', 'Acme', 'acme', 'company', '[]', false, :now)"
        ), {"now": NOW})
        for n in (1, 2):
            conn.execute(sa.text(
                "INSERT INTO accounts (id, email, email_verified, given_name, family_name,"
                " extra, field_owners, status, failed_code_attempts, version, created_at,"
                " updated_at) VALUES (:id, :email, true, 'Ann', 'A', '{}', '{}', 'active',"
                " 0, 1, :now, :now)"
            ), {"id": f"a{n}", "email": f"ann{n}@acme.example", "now": NOW})
            conn.execute(sa.text(
                "INSERT INTO scim_users (account_id, unit_id, user_name, user_name_key,"
                " created_at) VALUES (:id, 'u1', :email, :email, :now)"
            ), {"id": f"a{n}", "email": f"ann{n}@acme.example", "now": NOW})
    engine.dispose()


def test_upgrade_keeps_ids_and_downgrade_refuses_to_lose_pending_records(
    fresh_url: str,
) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, "0001")
    fill_like_0001(fresh_url)

    migrate.upgrade(fresh_url)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT account_id, scim_id, pending_email, joined_at FROM scim_users"
                " ORDER BY account_id")).all()  # fmt: skip
        assert [tuple(r) for r in rows] == [("a1", "a1", None, None), ("a2", "a2", None, None)]

        command.downgrade(config, "0001")  # nothing pending: lossless
        # Back at 0002 itself: later revisions' downgrades are not under test here, and
        # on SQLite (no transactional DDL) they would stay done when 0002's refuses.
        command.upgrade(config, "0002")
        with engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE scim_users SET pending_email = 'x@open.example' WHERE account_id = 'a2'"
            ))
        with pytest.raises(RuntimeError, match="pending"):
            command.downgrade(config, "0001")
        assert migrate.current_revision(fresh_url) == "0002"
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM scim_users")).scalar() == 2
    finally:
        engine.dispose()
