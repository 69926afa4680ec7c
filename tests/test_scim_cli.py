"""``idp scim-tokens`` and ``idp scim-group-roles``: the token is printed once, stored
only hashed, listed with its last use, revocable."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from idp.cli import main
from idp.store.db import db
from idp.store.models import ScimToken
from tests.support.scim import Scim, body, error, make_unit


def run(runner: FlaskCliRunner, *args: str) -> Any:
    result = runner.invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output) if "--json" in args else result.output


def test_token_life_cycle(app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> None:
    unit_id = make_unit(app, "acme")
    created = run(runner, "scim-tokens", "create", "--unit", "acme", "--name", "Okta", "--json")
    token = created["token"]
    assert token.startswith("ugscim_") and len(token) > 40
    assert created["unit_id"] == unit_id and created["name"] == "Okta"
    with app.app_context():
        row = db.session.get(ScimToken, created["id"])
        assert row is not None and token not in row.token_hash
        assert row.last_used_at is None

    listed = run(runner, "scim-tokens", "list", "--unit", unit_id, "--json")["tokens"]
    assert listed[0]["last_used_at"] is None and "token" not in listed[0]
    body(Scim(client, token).get("/ServiceProviderConfig"), 200)
    listed = run(runner, "scim-tokens", "list", "--unit", "acme", "--json")["tokens"]
    assert listed[0]["last_used_at"] is not None
    assert "last used" in run(runner, "scim-tokens", "list", "--unit", "acme")

    plain = run(runner, "scim-tokens", "create", "--unit", "acme")
    assert "ugscim_" in plain and "not shown again" in plain

    revoked = run(runner, "scim-tokens", "revoke", created["id"], "--json")
    assert revoked["revoked_at"] is not None
    error(Scim(client, token).get("/Users"), 401)


def test_cli_errors(app: Flask, runner: FlaskCliRunner) -> None:
    make_unit(app, "acme")
    for args in (["scim-tokens", "create", "--unit", "nope"],
                 ["scim-tokens", "list", "--unit", "nope"],
                 ["scim-tokens", "revoke", "nope"],
                 ["scim-group-roles", "remove", "--unit", "acme", "--group", "g", "--role", "r"],
                 ["scim-group-roles", "add", "--unit", "acme", "--group", " ", "--role", "buyer"],
                 ["scim-group-roles", "add", "--unit", "acme", "--group", "g", "--role", "nope"]):
        result = runner.invoke(main, args)
        assert result.exit_code != 0 and "Error" in result.output, args


def test_group_role_rules_cli(app: Flask, runner: FlaskCliRunner) -> None:
    make_unit(app, "acme")
    added = run(runner, "scim-group-roles", "add", "--unit", "acme", "--group", "Buyers",
                "--role", "buyer", "--json")
    assert added["group"] == "buyers" and added["role"] == "buyer"
    assert run(runner, "scim-group-roles", "list", "--unit", "acme", "--json") == {
        "rules": [{"group": "buyers", "role": "buyer"}]}
    run(runner, "scim-group-roles", "remove", "--unit", "acme", "--group", "BUYERS",
        "--role", "buyer")
    assert run(runner, "scim-group-roles", "list", "--unit", "acme", "--json") == {"rules": []}
