"""The audit log (``idp.audit``): every event names a structured actor and the unit it
concerns, events are numbered by the database in commit order, and an exporter that
resumes from its cursor (``audit.since``, ``idp audit list --after``) never misses a
committed event -- not even one whose transaction started first and committed last."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from idp import audit
from idp.cli import main
from idp.release import consent
from idp.store.db import db
from idp.store.unit_of_work import atomic
from tests.support.concurrency import run_together
from tests.support.login import csrf_token, sign_in_to_dashboard
from tests.support.merchants import merchant_id
from tests.support.oidc import make_account, register
from tests.support.scim import USER, Scim, body, make_unit

ROUNDS = 20


def listed(runner: FlaskCliRunner, *args: str) -> dict[str, Any]:
    """``idp audit list ... --json`` as parsed JSON."""
    result = runner.invoke(main, ["audit", "list", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def everything(app: Flask, unit_id: str | None = None) -> list[dict[str, Any]]:
    """Every event, read page by page from the cursor as an exporter would."""
    seen: list[dict[str, Any]] = []
    cursor = 0
    with app.app_context():
        while True:
            events, cursor = audit.since(cursor, 7, unit_id)
            if not events:
                return seen
            seen.extend(audit.describe(e) for e in events)




def test_scim_events_name_the_token_and_the_unit(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    unit_id = make_unit(app, "acme", verified=("acme.example",))
    made = runner.invoke(main, ["scim-tokens", "create", "--unit", "acme", "--name", "Okta",
                                "--json"])  # fmt: skip
    assert made.exit_code == 0, made.output
    token = json.loads(made.output)
    user = body(Scim(client, token["token"]).post(
        "/Users", {"schemas": [USER], "userName": "ann@acme.example"}), 201)  # fmt: skip

    events = listed(runner, "--unit", "acme")["events"]
    by_action = {e["action"]: e for e in events}
    assert by_action["scim_token.created"]["actor"]["kind"] == "operator"
    provisioned = by_action["account.provisioned"]
    assert provisioned["actor"] == {"kind": "scim", "id": token["id"], "on_behalf_of": None,
                                    "display": "scim:Okta"}
    assert provisioned["unit_id"] == unit_id and provisioned["target"] == user["id"]
    assert all(e["unit_id"] == unit_id for e in events)
    # the unit's own set-up is there too: its domain claim and verification
    assert {"domain.claim", "domain.verified", "scim_token.created",
            "account.provisioned"} <= set(by_action)  # fmt: skip
    # the unit filter by id gives the same events
    assert listed(runner, "--unit", unit_id)["events"] == events


def test_dashboard_consent_withdrawal_is_the_employee_and_no_unit(
    app: Flask, client: FlaskClient
) -> None:
    ann = make_account(app, "ann@corp.example")
    rp = register(app, name="Office Supplies Ltd")
    shop = merchant_id(app, rp.client_id)
    with app.app_context():
        consent.grant(ann, shop, ["openid", "email"], [])
    html = sign_in_to_dashboard(app, client).get_data(as_text=True)
    assert "Office Supplies Ltd" in html
    token = csrf_token(client.get("/account").get_data(as_text=True))
    resp = client.post("/account/consents/withdraw",
                       data={"csrf_token": token, "merchant_id": shop})  # fmt: skip
    assert resp.status_code == 303

    revoked = [e for e in everything(app) if e["action"] == "consent.revoke"]
    assert len(revoked) == 1
    assert revoked[0]["actor"] == {"kind": "account", "id": ann, "on_behalf_of": None,
                                   "display": f"account:{ann}"}
    assert revoked[0]["unit_id"] is None and revoked[0]["target"] == shop


def test_ldap_sync_events_name_the_directory_and_the_unit(
    app: Flask, unit_id: str, directory_id: str
) -> None:
    from idp.ldap import sync as ldap_sync
    from idp.store import ldap_repo

    with app.app_context():
        directory = ldap_repo.directory(directory_id)
        assert directory is not None
        ldap_sync.run_locked(directory)

    events = [e for e in everything(app, unit_id) if e["actor"]["kind"] == "ldap"]
    assert {e["actor"]["id"] for e in events} == {directory_id}
    assert {e["unit_id"] for e in events} == {unit_id}
    assert "ldap.sync" in {e["action"] for e in events}
    assert "account.created" in {e["action"] for e in events} or len(events) > 1


def test_concurrent_writers_get_distinct_increasing_numbers(app: Flask) -> None:
    written: dict[str, list[int]] = {"a": [], "b": []}

    def writer(name: str) -> Callable[[], None]:
        def job() -> None:
            with app.app_context():
                for i in range(ROUNDS):
                    with atomic():
                        row = audit.record(audit.Actor.system(name), "test.write", f"{name}{i}")
                    written[name].append(row.seq)
        return job

    run_together(writer("a"), writer("b"))
    for seqs in written.values():
        assert seqs == sorted(seqs) and len(set(seqs)) == ROUNDS
    assert not set(written["a"]) & set(written["b"])
    exported = [e for e in everything(app) if e["action"] == "test.write"]
    assert [e["seq"] for e in exported] == sorted(written["a"] + written["b"])
    # each writer's events come out in the order it wrote them
    for name in written:
        mine = [e["target"] for e in exported if e["actor"]["id"] == name]
        assert mine == [f"{name}{i}" for i in range(ROUNDS)]


def test_cursor_never_skips_an_event_that_commits_late(app: Flask) -> None:
    """Transaction A stages (and flushes) its event first but commits after B; an
    exporter that read B in between still gets A afterwards."""
    staged, go = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def slow_writer() -> None:
        try:
            with app.app_context():
                audit.record(audit.Actor.system("slow"), "test.slow", "a")
                db.session.flush()  # as a repository's own query would
                staged.set()
                assert go.wait(30)
                db.session.commit()
        except BaseException as exc:  # reported below
            failures.append(exc)
            staged.set()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    try:
        assert staged.wait(30)
        with app.app_context():
            with atomic():
                audit.record(audit.Actor.system("fast"), "test.fast", "b")
            first, cursor = audit.since(0, 100)
            assert [e.action for e in first if e.action.startswith("test.")] == ["test.fast"]
    finally:
        go.set()
        thread.join()
    if failures:
        raise failures[0]
    with app.app_context():
        later, _next = audit.since(cursor, 100)
        assert [e.action for e in later] == ["test.slow"]
        assert later[0].seq > cursor


def test_cli_lists_pages_from_a_cursor(app: Flask, runner: FlaskCliRunner) -> None:
    unit_id = make_unit(app, "acme")
    with app.app_context():
        start = audit.since(0, audit.MAX_PAGE)[1]
        audit.record(audit.Actor.staff("s1", on_behalf_of="a1"), "test.one", "t1",
                     {"n": 1}, unit_id=unit_id)  # fmt: skip
        audit.record(audit.Actor.operator("ops"), "test.two", "t2", unit_id=unit_id)
        with atomic():
            audit.record("scim:HR", "test.three", None, {"unit_id": unit_id})
            audit.record(audit.Actor.system(), "test.elsewhere", None)

    page = listed(runner, "--after", str(start), "--limit", "2")
    assert [e["action"] for e in page["events"]] == ["test.one", "test.two"]
    assert page["events"][0]["actor"] == {"kind": "staff", "id": "s1", "on_behalf_of": "a1",
                                          "display": "staff:s1"}
    assert page["next_cursor"] == page["events"][1]["seq"]
    rest = listed(runner, "--after", str(page["next_cursor"]))
    assert [e["action"] for e in rest["events"]] == ["test.three", "test.elsewhere"]
    assert rest["events"][0]["actor"]["kind"] == "scim"
    assert rest["events"][0]["unit_id"] == unit_id  # from the details, old style
    end = listed(runner, "--after", str(rest["next_cursor"]))
    assert end == {"events": [], "next_cursor": rest["next_cursor"]}
    assert [e["action"] for e in listed(runner, "--unit", "acme")["events"]] == [
        "test.one", "test.two", "test.three"]

    text = runner.invoke(main, ["audit", "list", "--after", str(start), "--unit", "acme"])
    assert text.exit_code == 0, text.output
    lines = [line.split("\t") for line in text.stdout.splitlines()]
    assert [line[0] for line in lines] == [str(e["seq"]) for e in page["events"]] + [
        str(rest["events"][0]["seq"])]
    assert lines[0][2:] == ["staff:s1 for a1", unit_id, "test.one", "t1", '{"n": 1}']
    assert lines[1][2] == "operator:ops" and lines[2][5] == "-"
    for bad in (["--limit", "0"], ["--after", "-1"], ["--limit", "100000"]):
        assert runner.invoke(main, ["audit", "list", *bad]).exit_code == 2


@pytest.mark.parametrize(("text", "kind", "actor_id"), [
    ("account:a1", "account", "a1"),
    ("scim:HR", "scim", "HR"),
    ("ldap-sync:d1", "ldap", "d1"),
    ("ldap-login:d1", "ldap", "d1"),
    ("connector:c1", "sso", "c1"),
    ("admin", "operator", None),
    ("cli:ops:apply", "operator", "ops:apply"),
    ("system", "system", None),
    ("system:domain-scheduler", "system", "domain-scheduler"),
    ("login", "system", "login"),
])  # fmt: skip
def test_old_actor_strings_are_read_by_one_parser(text: str, kind: str,
                                                  actor_id: str | None) -> None:
    actor = audit.parse_actor(text)
    assert (actor.kind, actor.id, actor.on_behalf_of, actor.display) == (
        kind, actor_id, None, text)


def test_an_unknown_actor_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        audit.Actor("merchant", "x")


def test_an_event_staged_since_the_last_flush_waits_for_the_lock(app: Flask) -> None:
    """An event still pending at commit (no flush since it was recorded) is inserted
    with the commit's flush and, on PostgreSQL, after the advisory lock: its number is
    drawn only once the transactions before it are done."""
    from sqlalchemy import event

    from idp.store.models import Account

    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    with app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            with atomic():
                db.session.add(Account(email="order@audit.example"))
                audit.record(audit.Actor.system("order"), "test.order", "x")
        finally:
            event.remove(engine, "before_cursor_execute", record)
    inserts = [i for i, s in enumerate(seen) if "INSERT INTO audit_events" in s]
    account = next(i for i, s in enumerate(seen) if s.startswith("INSERT INTO accounts"))
    assert len(inserts) == 1 and account < inserts[0]
    if engine.dialect.name == "postgresql":
        # the lock before the insert: an earlier statement, or a CTE of the insert whose
        # row is formed (and its seq drawn) from the lock's result
        lock = next(i for i, s in enumerate(seen) if "pg_advisory_xact_lock" in s)
        assert lock < inserts[0] or (
            lock == inserts[0]
            and seen[lock].startswith("WITH audit_lock AS (SELECT pg_advisory_xact_lock(")
            and seen[lock].endswith("FROM audit_lock RETURNING audit_events.seq")
        )
