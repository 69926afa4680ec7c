"""``idp customers``: the operator's customers from the command line (issue 12,
item 9), the same service as the API."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskCliRunner

from idp.cli import main
from idp.store.db import db
from idp.store.models import AuditEvent, Unit
from idp.units import registry as units


def run_json(runner: FlaskCliRunner, *args: str, code: int = 0) -> Any:
    result = runner.invoke(main, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.output)


def test_create_list_show_update_and_delete(app: Flask, runner: FlaskCliRunner) -> None:
    made = run_json(runner, "customers", "create", "--kind", "company", "--name", "ACME GmbH",
                    "--city", "Berlin", "--country", "de", "--vat-id", "DE123456789")
    assert made["address"] == {"city": "Berlin", "country": "DE"}
    person = run_json(runner, "customers", "create", "--kind", "person",
                      "--given-name", "Erika", "--family-name", "Mustermann")
    assert person["name"] == "Erika Mustermann"
    refused = run_json(runner, "customers", "create", "--kind", "person", "--name", "X",
                       code=1)
    assert refused["error"] == "field_not_for_kind"
    with app.app_context():
        units.create("ACME Sales", parent=made["id"])
    listed = run_json(runner, "customers", "list")
    assert [c["name"] for c in listed] == ["ACME GmbH", "Erika Mustermann"]
    assert [c["name"] for c in run_json(runner, "customers", "list", "--kind", "person")] == [
        "Erika Mustermann"]
    assert run_json(runner, "customers", "show", "acme-gmbh")["vat_id"] == "DE123456789"
    assert run_json(runner, "customers", "show", "acme-sales", code=1)["error"] == "not_found"
    changed = run_json(runner, "customers", "update", made["id"], "--street", "Hauptstr. 1",
                       "--status", "blocked", "--vat-id", "")
    assert changed["address"] == {"street": "Hauptstr. 1", "city": "Berlin", "country": "DE"}
    assert changed["status"] == "blocked" and changed["vat_id"] is None
    with app.app_context():
        assert units.get("acme-sales").status == "blocked"
    wrong = run_json(runner, "customers", "delete", "acme-gmbh", "--confirm", "ACME", code=1)
    assert wrong["error"] == "confirmation_required"
    gone = run_json(runner, "customers", "delete", "acme-gmbh", "--confirm", "ACME GmbH")
    assert gone["deleted"] is True and gone["removed"]["units"] == 2
    with app.app_context():
        assert db.session.query(Unit).count() == 1
        event = db.session.query(AuditEvent).filter_by(action="customer.delete").one()
        assert event.actor_kind == "operator"
    result = runner.invoke(main, ["customers", "list"])
    assert result.exit_code == 0 and "Erika Mustermann" in result.output
