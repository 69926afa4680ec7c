"""Migration 0012s (indexes for the session sweeper and for the retention of console
CSV imports) on a database that revision 0012p created and filled, on SQLite and
PostgreSQL: ``sessions.expires_at``, ``sessions.last_seen_at`` and
``access_imports.finished_at`` get their indexes and every row stays; downgrade drops
the three indexes and keeps the rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from idp.store import migrate, sessions_repo
from tests.test_migration_0009s import fill_like_previous

PREVIOUS = "0012p"
THIS = "0012s"
NOW = "2026-12-06 15:30:00+00:00"
WANTED = {"ix_sessions_expires_at": ("sessions", ["expires_at"]),
          "ix_sessions_last_seen_at": ("sessions", ["last_seen_at"]),
          "ix_access_imports_finished_at": ("access_imports", ["finished_at"])}


def fill_at_previous(url: str) -> None:
    """An account and unit (:func:`fill_like_previous`), a session of the account and
    one finished and one pending import, as revision 0012p stores them."""
    fill_like_previous(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO sessions (id_hash, account_id, auth_time, amr, created_at,"
            " last_seen_at, expires_at) VALUES ('s1', 'a1', :now, '[]', :now, :now, :now)"),
            {"now": NOW})
        for import_id, status, finished in (("i1", "sent", NOW), ("i2", "pending", None)):
            conn.execute(sa.text(
                "INSERT INTO access_imports (id, unit_id, account_id, dry_run, status,"
                " attempts, next_attempt_at, rows_total, rows_done, created_at, finished_at)"
                " VALUES (:id, 'u1', 'a1', false, :status, 1, :now, 1, 0, :now, :finished)"),
                {"id": import_id, "status": status, "now": NOW, "finished": finished})
    engine.dispose()


def indexes(conn: Any) -> dict[str, tuple[str, list[str]]]:
    """The wanted indexes present: name -> (table, columns)."""
    found = {}
    for table in ("sessions", "access_imports"):
        for index in sa.inspect(conn).get_indexes(table):
            if index["name"] in WANTED:
                found[index["name"]] = (table, list(index["column_names"]))
    return found


def test_upgrade_adds_the_indexes_and_downgrade_drops_them(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_at_previous(fresh_url)
    command.upgrade(config, THIS)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.connect() as conn:
            assert indexes(conn) == WANTED
            assert conn.execute(sa.text("SELECT count(*) FROM sessions")).scalar() == 1
            rows = conn.execute(sa.text(
                "SELECT id, status FROM access_imports ORDER BY id")).all()
            assert [tuple(r) for r in rows] == [("i1", "sent"), ("i2", "pending")]
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            assert indexes(conn) == {}
            assert conn.execute(sa.text("SELECT count(*) FROM sessions")).scalar() == 1
            assert conn.execute(sa.text("SELECT count(*) FROM access_imports")).scalar() == 2
        command.upgrade(config, "head")
        with engine.connect() as conn:
            assert indexes(conn) == WANTED
    finally:
        engine.dispose()


def test_the_sweepers_query_is_answered_from_the_session_indexes(fresh_url: str) -> None:
    """On PostgreSQL the session sweeper's time condition (``expires_at <= now OR
    last_seen_at <= idle_since``) can be answered from the two indexes: with
    sequential scans made costly, the plan reads both and not the whole table (with
    an index on ``expires_at`` alone, or none, it can only scan ``sessions``)."""
    if not fresh_url.startswith("postgresql"):
        pytest.skip("the plan is PostgreSQL's; SQLite has no such planner switch")
    command.upgrade(migrate.alembic_config(fresh_url), "head")
    now = datetime(2026, 12, 6, 15, 30, tzinfo=UTC)
    query = sessions_repo.unseen_query(now, now - timedelta(minutes=30), 100)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            compiled = query.compile(dialect=conn.dialect)
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = "\n".join(r[0] for r in conn.exec_driver_sql(
                "EXPLAIN " + compiled.string, compiled.params))
        assert "ix_sessions_expires_at" in plan and "ix_sessions_last_seen_at" in plan, plan
        assert "Seq Scan on sessions" not in plan, plan
    finally:
        engine.dispose()
