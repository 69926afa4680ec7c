"""``idp accesses``: the accesses API's everyday operations on the command line
(issue 12, item 9), with --json as the API answers."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from idp.accounts import accesses
from idp.cli import main
from idp.store.db import db
from idp.store.models import Account, AuditEvent
from idp.store.unit_of_work import atomic
from idp.units import registry as units


def setup(app: Flask) -> dict[str, str]:
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
        units.create("Globex", slug="globex")
        ids = {}
        for email, roles in (("boss@acme.example", ["main_user"]),
                             ("ann@acme.example", ["employee"]),
                             ("amy@acme.example", ["employee"])):
            account = Account(email=email, email_verified=True, given_name=email[:3])
            db.session.add(account)
            db.session.commit()
            with atomic():
                row = accesses.create(account.id, acme, roles, "test", event=None)
            ids[email] = row.id
        return ids


def run_json(runner: FlaskCliRunner, *args: str, code: int = 0) -> Any:
    result = runner.invoke(main, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.output)


def test_list_add_update_suspend_reactivate_remove_bulk(app: Flask) -> None:
    ids = setup(app)
    runner = app.test_cli_runner()
    page = run_json(runner, "accesses", "list", "--unit", "acme", "--limit", "2")
    assert page["total"] == 3 and len(page["items"]) == 2 and page["next_cursor"]
    rest = run_json(runner, "accesses", "list", "--unit", "acme", "--cursor",
                    page["next_cursor"])
    assert [i["email"] for i in page["items"] + rest["items"]] == [
        "amy@acme.example", "ann@acme.example", "boss@acme.example"]
    found = run_json(runner, "accesses", "list", "--q", "ann", "--status", "active")
    assert [i["email"] for i in found["items"]] == ["ann@acme.example"]
    added = run_json(runner, "accesses", "add", "globex", "--email", "ann@acme.example",
                     "--roles", "operational_contact", "--no-platform-access")
    assert added["unit_name"] == "Globex" and added["platform_access"] is False
    changed = run_json(runner, "accesses", "update", "globex", added["id"], "--roles",
                       "commercial_contact", "--notify", "invoice.issued")
    assert changed["roles"] == ["commercial_contact"]
    assert changed["notifications"] == ["invoice.issued"]
    refused = run_json(runner, "accesses", "update", "globex", added["id"], "--notify", "x",
                       code=1)
    assert refused["error"] == "unknown_event"
    assert run_json(runner, "accesses", "suspend", "acme", ids["ann@acme.example"])[
        "status"] == "suspended"
    assert run_json(runner, "accesses", "reactivate", "acme", ids["ann@acme.example"])[
        "status"] == "active"
    last = run_json(runner, "accesses", "remove", "acme", ids["boss@acme.example"], code=1)
    assert last["error"] == "last_main_user"
    assert run_json(runner, "accesses", "remove", "globex", added["id"])["removed"] is True
    bulk = run_json(runner, "accesses", "bulk", "suspend", "--unit", "acme")
    assert bulk["counts"] == {"done": 2, "unchanged": 0, "refused": 1}
    assert bulk["items"][0]["code"] == "last_main_user"
    by_ids = run_json(runner, "accesses", "bulk", "reactivate", "--ids",
                      f"{ids['amy@acme.example']},nope")
    assert by_ids["counts"] == {"done": 1, "unchanged": 0, "refused": 1}
    missing = run_json(runner, "accesses", "suspend", "globex", ids["amy@acme.example"], code=1)
    assert missing["error"] == "not_found"
    with app.app_context():
        actors = set(db.session.scalars(select(AuditEvent.actor_kind).where(
            AuditEvent.action.in_(["access.suspended", "access.linked"]))))
    assert actors == {"operator"}
