"""Migration 0008b (indexes of the access lists) on a database that revision 0007
created and filled, on SQLite and PostgreSQL: the rows survive, the unit index
exists (and on PostgreSQL the prefix indexes), downgrade drops them again."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from idp.store import migrate
from tests.test_migration_0007 import fill_like_previous

PREVIOUS = "0008a"
THIS = "0008b"
PREFIX_INDEXES = {
    "ix_accounts_email_prefix", "ix_accounts_given_name_prefix",
    "ix_accounts_family_name_prefix",
}


def _indexes(conn: sa.Connection, table: str) -> set[str]:
    # SQLite's reflection skips expression indexes: ask its catalogue
    if conn.dialect.name == "sqlite":
        rows = conn.execute(sa.text(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"), {"t": table})
    else:
        rows = conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = :t"),
                            {"t": table})
    return {str(r[0]) for r in rows}


def test_upgrade_adds_the_indexes_and_downgrade_drops_them(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)
    command.upgrade(config, THIS)
    engine = sa.create_engine(fresh_url)
    postgres = fresh_url.startswith("postgresql")
    try:
        with engine.connect() as conn:
            assert "ix_accesses_unit_id" in _indexes(conn, "accesses")
            assert _indexes(conn, "accounts") >= PREFIX_INDEXES
            if postgres:
                assert "ix_accounts_email_reversed" in _indexes(conn, "accounts")
                assert conn.execute(sa.text(
                    "SELECT count(*) FROM pg_statistic_ext"
                    " WHERE stxname = 'st_accesses_roles_text'")).scalar() == 1
                plan = " ".join(r[0] for r in conn.execute(sa.text(
                    "EXPLAIN SELECT id FROM accounts WHERE lower(email) LIKE 'ann%'")))
                assert "Index" in plan or "Seq Scan" in plan  # valid SQL on the index
            assert conn.execute(sa.text("SELECT count(*) FROM accesses")).scalar() == 1
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            assert "ix_accesses_unit_id" not in _indexes(conn, "accesses")
            assert not PREFIX_INDEXES & _indexes(conn, "accounts")
            assert "ix_accounts_email_reversed" not in _indexes(conn, "accounts")
            assert conn.execute(sa.text("SELECT count(*) FROM accesses")).scalar() == 1
        command.upgrade(config, "head")
    finally:
        engine.dispose()
