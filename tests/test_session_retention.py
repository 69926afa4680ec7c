"""Retention of ended browser sessions (docs/operations.md, "Session retention"),
through the service the session sweeper's loop runs
(:func:`idp.interaction.rp_logout.prune_ended_sessions`) and HTTP: a session that
expired or went idle more than a day ago, without a logout participant, is deleted in
bounded batches, once across nodes, with one audit event per batch; one with
participants is left to the sweeper (which tells them); the actor's own session is
kept while an impersonation may return to it; the dashboard's sign-in history is
untouched; the sweeper loop runs it. And the sweeper's query, on PostgreSQL,
probes the participants per session instead of reading them all."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from idp.interaction import impersonation, rp_logout
from idp.saml import registry
from idp.store import impersonations_repo, sessions_repo
from idp.store.db import db
from idp.store.models import AuditEvent, Session, utcnow
from tests import test_impersonation as impersonation_tests
from tests import test_oidc_rp_logout as rp_logout_tests
from tests.support import oidc, saml_flow
from tests.support.logout_receiver import LogoutReceiver
from tests.support.saml_sp import ServiceProvider
from tests.test_oidc_rp_logout import _channels, _rp_sign_in

# the RP logout tests' fixtures: the same settings, RP and back-channel receiver
settings_overrides = rp_logout_tests.settings_overrides
rp = rp_logout_tests.rp
receiver = rp_logout_tests.receiver

KEEP = rp_logout.ENDED_SESSION_KEEP


@pytest.fixture(autouse=True)
def _login_endpoint(app: Flask) -> None:
    oidc.ensure_login_endpoint(app)


def _signed_in(app: Flask, email: str) -> tuple[str, FlaskClient]:
    account = oidc.make_account(app, email)
    browser = app.test_client()
    oidc.start_session(app, browser, account)
    return account, browser


def _left(app: Flask, *accounts: str) -> list[int]:
    with app.app_context():
        return [len(sessions_repo.for_account(a)) for a in accounts]


def _pruned_events(app: Flask) -> list[dict[str, object]]:
    with app.app_context():
        return [dict(e.details) for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == rp_logout.PRUNED_SESSIONS)
            .order_by(AuditEvent.seq))]


def test_an_idle_session_is_deleted_a_day_after_it_ended(app: Flask) -> None:
    """Default limits (idle 30 minutes, absolute 12 hours): the idle limit ends the
    session first; its row goes a day later, not a minute before."""
    account, _ = _signed_in(app, "ann@corp.example")
    idle = timedelta(minutes=30)
    assert rp_logout.prune_ended_sessions(app) == 0
    minute = timedelta(minutes=1)
    assert rp_logout.prune_ended_sessions(app, now=utcnow() + idle + KEEP - minute) == 0
    assert _left(app, account) == [1]
    assert rp_logout.prune_ended_sessions(app, now=utcnow() + idle + KEEP + minute) == 1
    assert _left(app, account) == [0]
    assert _pruned_events(app) == [{"sessions": 1, "keep_hours": 24}]
    with app.app_context():
        [event] = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == rp_logout.PRUNED_SESSIONS)).all()
        assert event.actor == "system:retention" and event.actor_kind == "system"


@pytest.mark.parametrize("settings_overrides", [{"backchannel_allow_private": True,
                                                 "session_idle_minutes": 7 * 24 * 60}])
def test_an_expired_session_is_deleted_a_day_after_its_lifetime(app: Flask) -> None:
    """With an idle limit longer than the lifetime, the absolute lifetime (12 hours)
    ends the session; its row goes a day after that."""
    account, _ = _signed_in(app, "ann@corp.example")
    lifetime = timedelta(hours=12)
    assert rp_logout.prune_ended_sessions(app, now=utcnow() + lifetime + timedelta(minutes=1)) == 0
    assert rp_logout.prune_ended_sessions(
        app, now=utcnow() + lifetime + KEEP - timedelta(minutes=1)) == 0
    assert _left(app, account) == [1]
    assert rp_logout.prune_ended_sessions(
        app, now=utcnow() + lifetime + KEEP + timedelta(minutes=1)) == 1
    assert _left(app, account) == [0]


def test_batches_are_bounded_and_nodes_delete_each_session_once(app: Flask) -> None:
    accounts = [_signed_in(app, f"p{n}@corp.example")[0] for n in range(5)]
    later = utcnow() + timedelta(hours=12) + KEEP + timedelta(minutes=1)
    assert rp_logout.prune_ended_sessions(app, now=later, limit=2) == 2
    assert sum(_left(app, *accounts)) == 3
    # two nodes at once: together they delete what is left, each row once
    counts: list[int] = []
    threads = [threading.Thread(
        target=lambda: counts.append(rp_logout.prune_ended_sessions(app, now=later)))
        for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(counts) in ([0, 3], [1, 2]) and sum(counts) == 3
    assert rp_logout.prune_ended_sessions(app, now=later) == 0  # idempotent
    assert sum(_left(app, *accounts)) == 0
    events = _pruned_events(app)
    assert sum(int(str(e["sessions"])) for e in events) == 5
    assert all(int(str(e["sessions"])) > 0 for e in events)  # no event for nothing


def test_a_session_with_participants_is_left_to_the_sweeper(
    app: Flask, client: FlaskClient, rp: oidc.RP, receiver: LogoutReceiver
) -> None:
    """Retention never deletes a session whose relying parties were not told: the
    sweeper ends it with its back-channel logout (and removes it)."""
    _channels(app, rp, "--backchannel-uri", receiver.url)
    account = oidc.make_account(app, "sam@corp.example")
    oidc.start_session(app, client, account)
    signed = _rp_sign_in(app, client, rp, account)
    bystander, _ = _signed_in(app, "bob@corp.example")
    later = utcnow() + timedelta(hours=12) + KEEP + timedelta(minutes=1)
    assert rp_logout.prune_ended_sessions(app, now=later) == 1
    assert _left(app, account, bystander) == [1, 0]
    assert rp_logout.sweep_unseen(app, now=later) == 1
    assert rp_logout.deliver_due(app) == 1
    assert [c["sid"] for c in receiver.got] == [signed["id_claims"]["sid"]]
    assert _left(app, account) == [0]


def test_the_sweeper_loop_runs_the_retention(app: Flask) -> None:
    """Wired into the session sweeper's background loop: its first step already
    deletes a session that ended more than a day ago (the row aged as a clock that
    moved on would have it)."""
    account, _ = _signed_in(app, "ann@corp.example")
    with app.app_context():
        long_ago = utcnow() - KEEP - timedelta(hours=13)
        db.session.execute(update(Session).where(Session.account_id == account)
                           .values(expires_at=long_ago, last_seen_at=long_ago))
        db.session.commit()
    loop = rp_logout.start_sweeper_thread(app, interval=0.05)
    try:
        for _ in range(200):  # the loop's first step; not a measure of its speed
            if _left(app, account) == [0]:
                break
            threading.Event().wait(0.05)
    finally:
        loop.stop()
    assert _left(app, account) == [0]
    assert _pruned_events(app) == [{"sessions": 1, "keep_hours": 24}]


def _signins(html: str) -> list[str]:
    return re.findall(r'<tr class="ug-signin">(.*?)</tr>', html, re.S)


def test_the_dashboards_sign_in_history_survives(
    app: Flask, client: FlaskClient, rp: oidc.RP
) -> None:
    """The sign-ins listed on the dashboard are not the sessions': deleting the ended
    session leaves the list as it was."""
    account = oidc.make_account(app, "ann@corp.example")
    oidc.start_session(app, client, account)
    _rp_sign_in(app, client, rp, account)
    before = _signins(client.get("/account").get_data(as_text=True))
    assert len(before) == 1
    later = utcnow() + timedelta(hours=12) + KEEP + timedelta(minutes=1)
    assert rp_logout.prune_ended_sessions(app, now=later) == 1
    assert _left(app, account) == [0]
    oidc.start_session(app, client, account)  # signed in again, a new session
    assert _signins(client.get("/account").get_data(as_text=True)) == before


@pytest.mark.parametrize("settings_overrides", [{"backchannel_allow_private": True,
                                                 "smtp_url": "smtp://127.0.0.1:9"}])
def test_the_actors_own_session_is_kept_while_an_impersonation_may_return(
    app: Flask,
) -> None:
    """The actor's own session is unused while they act as someone; idle for long,
    it stays as long as the impersonation has not ended (it returns there), unlike
    an idle session of anyone else. Once it ended, the idle limit counts again."""
    ids = impersonation_tests.world(app)
    web, csrf = impersonation_tests.browser(app, ids["carl"])
    resp = impersonation_tests.start(web, csrf, ids["sales"], ids["ann_access"], minutes=10)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    bystanders = [_signed_in(app, f"b{n}@corp.example")[0] for n in range(2)]
    idle_long = utcnow() + timedelta(minutes=31) + KEEP
    # pruned: the bystanders' sessions and the acting one (past its time limit), not
    # Carl's own
    assert rp_logout.prune_ended_sessions(app, now=idle_long) == 3
    assert _left(app, ids["carl"], ids["ann"], *bystanders) == [1, 0, 0, 0]
    with app.test_request_context("/"):  # ended by the actor, from elsewhere
        [row] = impersonations_repo.for_target(ids["ann"], 10)
        impersonation.end(row, "ended")
    assert rp_logout.prune_ended_sessions(app, now=idle_long) == 1
    assert _left(app, ids["carl"]) == [0]


@pytest.mark.parametrize("settings_overrides", [{"backchannel_allow_private": True,
                                                 "smtp_url": "smtp://127.0.0.1:9"}])
def test_the_sweeper_keeps_the_actors_own_session_while_an_impersonation_may_return(
    app: Flask, rp: oidc.RP, receiver: LogoutReceiver
) -> None:
    """The actor's own session, with a relying party to tell, is unused while they act
    as someone: the sweeper does not end it as idle (they would be signed out instead
    of returned, and the relying party told of a logout nobody made) as long as the
    impersonation has not ended; then the idle limit counts again."""
    _channels(app, rp, "--backchannel-uri", receiver.url)
    ids = impersonation_tests.world(app)
    web, csrf = impersonation_tests.browser(app, ids["carl"])
    _rp_sign_in(app, web, rp, ids["carl"])
    resp = impersonation_tests.start(web, csrf, ids["sales"], ids["ann_access"], minutes=10)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    idle = utcnow() + timedelta(minutes=31)
    assert rp_logout.sweep_unseen(app, now=idle) == 0
    assert _left(app, ids["carl"]) == [1] and receiver.got == []
    with app.test_request_context("/"):
        [row] = impersonations_repo.for_target(ids["ann"], 10)
        impersonation.end(row, "ended")
    assert rp_logout.sweep_unseen(app, now=idle) == 1
    assert _left(app, ids["carl"]) == [0]


LIVE = 20_000  # sessions in use, each with an OIDC and a SAML participant
ENDED = 20  # sessions that ended unseen, with participants too
# one participant table's index probed for the session at hand
PROBE = r"Index Cond: \(\(?session_id_hash\)?(?:::text)? = \(?sessions\.id_hash"


def _fill_like_production(app: Flask, account: str, client_id: str, sp_id: str) -> None:
    """Many live sessions with participants and a few ended ones, analysed: the
    planner's statistics of a busy deployment (written by SQL: 40,000 participants
    through sign-ins would take minutes)."""
    with app.app_context():
        conn = db.session.connection()
        params = {"account": account, "client": client_id, "sp": sp_id,
                  "live": LIVE, "total": LIVE + ENDED}
        conn.execute(sa.text(
            "INSERT INTO sessions (id_hash, account_id, auth_time, amr, created_at,"
            " last_seen_at, expires_at)"
            " SELECT 's' || g, :account, now(), '[]', now(),"
            " CASE WHEN g > :live THEN now() - interval '2 days' ELSE now() END,"
            " CASE WHEN g > :live THEN now() - interval '1 day'"
            " ELSE now() + interval '12 hours' END"
            " FROM generate_series(1, :total) g"), params)
        conn.execute(sa.text(
            "INSERT INTO oidc_session_participants (id, session_id_hash, client_id,"
            " account_id, created_at)"
            " SELECT 'o' || g, 's' || g, :client, :account, now()"
            " FROM generate_series(1, :total) g"), params)
        conn.execute(sa.text(
            "INSERT INTO saml_session_participants (id, session_id_hash, sp_id, name_id,"
            " name_id_format, session_index, created_at)"
            " SELECT 'p' || g, 's' || g, :sp, 'n' || g, 'persistent', 'i' || g, now()"
            " FROM generate_series(1, :total) g"), params)
        db.session.commit()
        for table in ("sessions", "oidc_session_participants", "saml_session_participants"):
            conn = db.session.connection()
            conn.exec_driver_sql(f"ANALYZE {table}")
            db.session.commit()


def test_the_sweepers_query_probes_the_participants_per_session(
    app: Flask, client: FlaskClient, rp: oidc.RP
) -> None:
    """On PostgreSQL, with the statistics of a busy deployment (20,000 live sessions
    with 40,000 participants, 20 that ended unseen), the sweeper's participant
    condition is two correlated EXISTS, each an index probe of one participant table
    for the candidate session: the plan never reads, sorts or hashes every
    participant row, as ``IN (… UNION …)`` over both tables did (an Append of both
    under a Unique or HashAggregate). A hashed subplan may read the impersonations
    that have not ended (an idle actor's own session is kept for them): few rows.
    The retention's query probes the participants too, as anti-joins. A bound on the
    work, not a timing."""
    if db_dialect(app) != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    account = oidc.make_account(app, "ann@corp.example")
    sp = ServiceProvider(saml_flow.idp_metadata(client), host="shop.example")
    with app.app_context():
        sp_id = registry.register(sp.metadata(), actor="test").id
    _fill_like_production(app, account, rp.client_id, sp_id)
    now = utcnow()
    query = sessions_repo.unseen_query(now, now - timedelta(minutes=30), 100)
    with app.app_context():
        assert len(sessions_repo.unseen_with_participants(
            now, now - timedelta(minutes=30), 100)) == ENDED
        conn = db.session.connection()
        compiled = query.compile(dialect=conn.dialect)
        plan = "\n".join(r[0] for r in conn.exec_driver_sql(
            "EXPLAIN " + compiled.string, compiled.params))
        ended = now - rp_logout.ENDED_SESSION_KEEP
        pruning = sessions_repo.prune_ended_query(ended, ended, 500).compile(
            dialect=conn.dialect)
        prune_plan = "\n".join(r[0] for r in conn.exec_driver_sql(
            "EXPLAIN " + pruning.string, pruning.params))
        db.session.rollback()
    for table in ("oidc_session_participants", "saml_session_participants"):
        assert f"Seq Scan on {table}" not in plan, plan
    assert len(re.findall(PROBE, plan)) == 2, plan
    for whole_table in ("Append", "Unique", "HashAggregate"):
        assert whole_table not in plan, plan
    for n in re.findall(r"hashed SubPlan (\d+)", plan):  # only the open impersonations
        body = re.search(rf"SubPlan {n}\n\s*->\s*(.*)", plan)
        assert body is not None and "on impersonations" in body.group(1), plan
    # the retention's query: the same probes, as anti-joins
    for table in ("oidc_session_participants", "saml_session_participants"):
        assert f"Seq Scan on {table}" not in prune_plan, prune_plan
    assert len(re.findall(PROBE, prune_plan)) == 2, prune_plan
    assert prune_plan.count("Anti Join") == 2, prune_plan


def db_dialect(app: Flask) -> str:
    with app.app_context():
        return db.engine.dialect.name
