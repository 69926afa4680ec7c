"""Migration 0004 (structured audit events with a sequence number) on a database that
the previous revision created and filled, on SQLite and PostgreSQL: existing events
are numbered in time order, their actors parsed, their unit taken from the details;
new events continue the numbering; downgrade keeps every event."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import command

from idp.store import migrate

PREVIOUS = "0003"  # the revision 0004 follows

EVENTS = [  # id, at, actor, details -- inserted out of time order on purpose
    ("e3", "2026-11-30 10:00:03+00:00", "scim:Okta", {"unit_id": "u1", "fields": ["x"]}),
    ("e1", "2026-11-30 10:00:01+00:00", "account:a1", {}),
    ("e4", "2026-11-30 10:00:04+00:00", "ldap-sync:d1", {"reason": "gone"}),
    ("e2", "2026-11-30 10:00:02+00:00", "admin", {}),
    ("e5", "2026-11-30 10:00:05+00:00", "cli:ops", {"unit": "acme"}),
    ("e6", "2026-11-30 10:00:06+00:00", "connector:c9", {}),
    ("e7", "2026-11-30 10:00:07+00:00", "login", {}),
]


def fill_like_previous(url: str) -> None:
    """Audit events as the code before 0004 wrote them (string actors, no seq)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for event_id, at, actor, details in EVENTS:
            conn.execute(sa.text(
                "INSERT INTO audit_events (id, at, actor, action, target, details, request_id)"
                " VALUES (:id, :at, :actor, 'x.done', 't', :details, NULL)"
            ), {"id": event_id, "at": at, "actor": actor, "details": json.dumps(details)})
    engine.dispose()


def rows(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT seq, id, actor, actor_kind, actor_id, on_behalf_of, unit_id"
            " FROM audit_events ORDER BY seq"
        ))]


def test_upgrade_numbers_parses_and_downgrade_keeps_every_event(fresh_url: str) -> None:
    config = migrate.alembic_config(fresh_url)
    command.upgrade(config, PREVIOUS)
    fill_like_previous(fresh_url)

    command.upgrade(config, "0004")
    engine = sa.create_engine(fresh_url)
    try:
        assert rows(engine) == [
            (1, "e1", "account:a1", "account", "a1", None, None),
            (2, "e2", "admin", "operator", None, None, None),
            (3, "e3", "scim:Okta", "scim", "Okta", None, "u1"),
            (4, "e4", "ldap-sync:d1", "ldap", "d1", None, None),
            (5, "e5", "cli:ops", "operator", "ops", None, None),
            (6, "e6", "connector:c9", "sso", "c9", None, None),
            (7, "e7", "login", "system", "login", None, None),
        ]
        # The database numbers new events after the migrated ones.
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO audit_events (id, at, actor, actor_kind, action, details)"
                " VALUES ('e8', '2026-12-01 00:00:00+00:00', 'system', 'system', 'y', '{}')"
            ))
            conn.execute(sa.text(
                "UPDATE audit_events SET on_behalf_of = 'a2' WHERE id = 'e8'"
            ))
        assert rows(engine)[-1] == (8, "e8", "system", "system", None, "a2", None)

        command.downgrade(config, PREVIOUS)
        with engine.connect() as conn:
            old = {r[0]: (r[1], json.loads(r[2]) if isinstance(r[2], str) else r[2])
                   for r in conn.execute(sa.text("SELECT id, actor, details FROM audit_events"))}
        assert len(old) == 8
        assert old["e3"] == ("scim:Okta", {"unit_id": "u1", "fields": ["x"]})
        assert old["e8"] == ("system", {"on_behalf_of": "a2"})

        command.upgrade(config, "head")
        assert [r[1] for r in rows(engine)] == ["e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8"]
        assert rows(engine)[-1][5] == "a2"  # on_behalf_of came back from the details
    finally:
        engine.dispose()
