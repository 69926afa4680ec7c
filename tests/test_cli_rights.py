"""``idp rights``, ``idp groups`` and ``idp staff``: the operator's levers over rights,
end to end through the command line (issue 11, item 5)."""

from __future__ import annotations

import json
from typing import Any

from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner

from idp.accounts import accesses
from idp.cli import main
from idp.rights import catalogue
from idp.store.db import db
from idp.store.models import Account
from idp.store.unit_of_work import atomic
from idp.units import registry as units


def setup_tree(app: Flask) -> None:
    """acme -> acme-sales -> acme-sales-north, globex; ann is employee of acme-sales,
    boss main user of acme, sam an operator account."""
    with app.app_context():
        acme = units.create("ACME", slug="acme")
        sales = units.create("ACME Sales", parent="acme", slug="acme-sales")
        units.create("ACME Sales North", parent="acme-sales", slug="acme-sales-north")
        units.create("Globex", slug="globex")
        for email, unit_id, roles in (
            ("ann@acme.example", sales.id, ["employee"]),
            ("boss@acme.example", acme.id, ["main_user"]),
            ("sam@operator.example", None, []),
        ):
            account = Account(email=email, email_verified=True)
            db.session.add(account)
            db.session.commit()
            if unit_id:
                with atomic():
                    accesses.create(account.id, unit_id, roles, "test", event=None)


def run(runner: FlaskCliRunner, *args: str) -> Result:
    return runner.invoke(main, list(args))


def run_json(runner: FlaskCliRunner, *args: str, code: int = 0) -> Any:
    result = run(runner, *args, "--json")
    assert result.exit_code == code, result.output
    return json.loads(result.output)


def check(runner: FlaskCliRunner, email: str, unit: str, permission: str, *extra: str) -> Result:
    return run(runner, "rights", "check", "--account", email, "--unit", unit,
               "--permission", permission, *extra)


def test_permissions_lists_the_catalogue(app: Flask, runner: FlaskCliRunner) -> None:
    rows = run_json(runner, "rights", "permissions")
    assert {r["name"] for r in rows} == set(catalogue.PERMISSIONS)
    by_name = {r["name"]: r for r in rows}
    assert by_name["impersonate"]["roles"] == []
    assert "main_user" in by_name["users.manage"]["roles"]
    text = run(runner, "rights", "permissions")
    assert text.exit_code == 0 and "approvals.decide" in text.output


def test_check_answers_yes_or_no_with_exit_status(app: Flask, runner: FlaskCliRunner) -> None:
    setup_tree(app)
    yes = check(runner, "boss@acme.example", "acme-sales-north", "users.manage")
    assert (yes.exit_code, yes.output.strip()) == (0, "yes")
    no = check(runner, "boss@acme.example", "globex", "users.read")
    assert (no.exit_code, no.output.strip()) == (1, "no")
    up = check(runner, "ann@acme.example", "acme", "orders.create")
    assert (up.exit_code, up.output.strip()) == (1, "no")
    data = run_json(runner, "rights", "check", "--account", "ANN@acme.example", "--unit",
                    "acme-sales-north", "--permission", "orders.create")
    assert data["allowed"] is True and data["permissions"] == ["orders.create"]


def test_check_refuses_unknown_names(app: Flask, runner: FlaskCliRunner) -> None:
    setup_tree(app)
    bad = check(runner, "boss@acme.example", "acme", "users.delete")
    assert bad.exit_code == 2 and "unknown permission" in bad.output
    assert check(runner, "nobody@acme.example", "acme", "users.read").exit_code == 2
    assert check(runner, "boss@acme.example", "nowhere", "users.read").exit_code == 2
    data = run_json(runner, "rights", "check", "--account", "boss@acme.example", "--unit",
                    "acme", "--permission", "users.delete", code=2)
    assert data["error"] == "unknown_permission"


def test_groups_set_list_remove(app: Flask, runner: FlaskCliRunner) -> None:
    setup_tree(app)
    made = run_json(runner, "groups", "set", "--unit", "acme-sales", "buyers",
                    "--permission", "orders.create", "--permission", "budgets.manage")
    assert made["permissions"] == ["budgets.manage", "orders.create"]
    assert run_json(runner, "groups", "list", "--unit", "acme-sales") == [
        {"name": "buyers", "unit_id": made["unit_id"],
         "permissions": ["budgets.manage", "orders.create"]},
    ]
    # The group is a role of the unit (units show, memberships, org claims).
    assert "buyers" in run_json(runner, "units", "show", "acme-sales")["roles"]
    with app.app_context():
        ann = db.session.query(Account).filter_by(email="ann@acme.example").one()
        with atomic():
            access = accesses.find(ann.id, made["unit_id"])
            assert access is not None
            accesses.set_roles(access, ["employee", "buyers"])
    assert check(runner, "ann@acme.example", "acme-sales-north", "budgets.manage").exit_code == 0
    assert check(runner, "ann@acme.example", "acme", "budgets.manage").exit_code == 1

    refused = run_json(runner, "groups", "remove", "--unit", "acme-sales", "buyers", code=1)
    assert refused["error"] == "group_in_use"
    bad = run_json(runner, "groups", "set", "--unit", "acme", "x", "--permission", "root",
                   code=1)
    assert bad["error"] == "unknown_permission"
    base = run_json(runner, "groups", "set", "--unit", "acme", "main_user", code=1)
    assert base["error"] == "invalid_group"
    run_json(runner, "groups", "set", "--unit", "acme", "spare")
    assert run_json(runner, "groups", "remove", "--unit", "acme", "spare")["removed"] is True
    assert run_json(runner, "groups", "list", "--unit", "acme") == []
    text = run(runner, "groups", "list", "--unit", "acme-sales")
    assert text.output.strip() == "buyers: budgets.manage, orders.create"


def test_staff_add_assign_check_unassign_remove(app: Flask, runner: FlaskCliRunner) -> None:
    setup_tree(app)
    assert run_json(runner, "staff", "add", "sam@operator.example")["staff"] is True
    assigned = run_json(runner, "staff", "assign", "--account", "sam@operator.example",
                        "--customer", "acme", "--as", "processor",
                        "--permission", "documents.read")
    assert assigned == {"email": "sam@operator.example", "customer": "acme",
                        "as": "processor", "permissions": ["documents.read"]}
    staff_check = ("--as", "staff")
    assert check(runner, "sam@operator.example", "acme-sales-north", "documents.read",
                 *staff_check).exit_code == 0
    assert check(runner, "sam@operator.example", "acme", "users.manage",
                 *staff_check).exit_code == 1
    assert check(runner, "sam@operator.example", "globex", "documents.read",
                 *staff_check).exit_code == 1
    assert check(runner, "sam@operator.example", "acme", "documents.read").exit_code == 1

    run_json(runner, "staff", "assign", "--account", "sam@operator.example",
             "--customer", "globex", "--as", "administrator")
    assert check(runner, "sam@operator.example", "globex", "impersonate",
                 *staff_check).exit_code == 0
    [row] = run_json(runner, "staff", "list")
    assert row["email"] == "sam@operator.example"
    assert [(a["customer"], a["as"]) for a in row["assignments"]] == [
        ("acme", "processor"), ("globex", "administrator"),
    ]
    sub = run_json(runner, "staff", "assign", "--account", "sam@operator.example",
                   "--customer", "acme-sales", "--as", "administrator", code=1)
    assert sub["error"] == "not_a_customer"
    stranger = run_json(runner, "staff", "assign", "--account", "ann@acme.example",
                        "--customer", "acme", "--as", "administrator", code=1)
    assert stranger["error"] == "not_staff"

    out = run_json(runner, "staff", "unassign", "--account", "sam@operator.example",
                   "--customer", "globex")
    assert out["assigned"] is False
    assert check(runner, "sam@operator.example", "globex", "impersonate",
                 *staff_check).exit_code == 1
    assert run_json(runner, "staff", "remove", "sam@operator.example")["staff"] is False
    assert check(runner, "sam@operator.example", "acme", "documents.read",
                 *staff_check).exit_code == 1
    assert run_json(runner, "staff", "list") == []
    gone = run_json(runner, "staff", "remove", "sam@operator.example", code=1)
    assert gone["error"] == "not_staff"
