"""Migration 0012l (the kind of a queued back-channel logout: ``oidc`` logout token or
``saml`` SOAP LogoutRequest) on a database that revision 0012c created and filled, on
SQLite and PostgreSQL: queued logout tokens keep their place as ``oidc``; downgrade
drops the SAML rows (older code would send them as logout tokens) and the column."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from idp.store import migrate
from tests.test_migration_0009s import fill_like_previous

PREVIOUS = "0012c"
THIS = "0012l"
NOW = "2026-12-06 12:30:00+00:00"
INSERT = (
    "INSERT INTO backchannel_logouts (id, client_id, url, claims, alg, status, attempts,"
    " next_attempt_at, created_at{extra}) VALUES (:id, 'c1', 'https://rp.example/bc', '{{}}',"
    " 'ES256', 'pending', 0, :now, :now{extra_value})"
)


def test_upgrade_marks_queued_logouts_oidc_and_downgrade_drops_saml_ones(
    fresh_url: str,
) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(INSERT.format(extra="", extra_value="")),
                         {"id": "l1", "now": NOW})
        command.upgrade(config, THIS)
        with engine.begin() as conn:
            assert conn.execute(sa.text(
                "SELECT kind FROM backchannel_logouts WHERE id = 'l1'")).scalar() == "oidc"
            conn.execute(sa.text(INSERT.format(extra=", kind", extra_value=", 'saml'")),
                         {"id": "l2", "now": NOW})
            conn.execute(sa.text(INSERT.format(extra="", extra_value="")),
                         {"id": "l3", "now": NOW})
            kinds = dict(conn.execute(sa.text("SELECT id, kind FROM backchannel_logouts")).all())
            assert kinds == {"l1": "oidc", "l2": "saml", "l3": "oidc"}
        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("backchannel_logouts")}
            assert "kind" not in columns
            ids = set(conn.execute(sa.text("SELECT id FROM backchannel_logouts")).scalars())
            assert ids == {"l1", "l3"}
        command.upgrade(config, "head")
    finally:
        engine.dispose()
