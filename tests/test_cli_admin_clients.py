"""``idp admin-clients create|list|delete`` (issue 12, item 2): a client that acts
for one unit or for the operator, its secret shown once, refused input, and a deleted
client whose tokens stop working at once."""

from __future__ import annotations

import json

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from idp.cli import main
from idp.units import registry as units
from tests.support.api import AdminClient, Api, assert_problem, client_token


def _json(runner: FlaskCliRunner, *args: str) -> tuple[int, dict]:
    result = runner.invoke(main, ["admin-clients", *args, "--json"])
    return result.exit_code, json.loads(result.output)


def test_create_list_and_delete_admin_clients(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
        globex = units.create("Globex", slug="globex").id
    code, made = _json(runner, "create", "--unit", "acme")
    assert code == 0 and made["unit_id"] == acme and made["scope"] == "admin"
    assert made["client_secret"] and made["token_endpoint"].endswith("/token")
    code, operator = _json(runner, "create", "--operator")
    assert code == 0 and operator["unit_id"] is None

    api = Api(client, client_token(client, AdminClient(made["client_id"],
                                                       made["client_secret"])))
    assert api.get("/me").get_json()["customers"] == [acme]
    assert_problem(api.get(f"/units/{globex}/audit"), 404)  # another company's unit

    code, listed = _json(runner, "list")
    assert code == 0
    assert {row["client_id"]: row["unit"] for row in listed} == {
        made["client_id"]: "acme", operator["client_id"]: None,
    }
    assert "client_secret" not in json.dumps(listed)

    code, _ = _json(runner, "delete", made["client_id"])
    assert code == 0
    assert_problem(api.get("/me"), 401, "invalid_token")
    code, refused = _json(runner, "delete", made["client_id"])
    assert code == 1 and refused["error"] == "not_found"


def test_refused_input_writes_nothing(app: Flask, runner: FlaskCliRunner) -> None:
    with app.app_context():
        units.create("ACME", slug="acme")
    for args in ([], ["--unit", "acme", "--operator"]):
        code, refused = _json(runner, "create", *args)
        assert code == 1 and refused["error"] == "invalid_request"
    code, refused = _json(runner, "create", "--unit", "no-such-unit")
    assert code == 1 and refused["error"] == "not_found"
    code, listed = _json(runner, "list")
    assert code == 0 and listed == []
