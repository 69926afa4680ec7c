"""Changes to merchant OIDC clients, SAML service providers and upstream connectors
made through the CLI (``idp clients``, ``idp saml sps``, ``idp connectors``) and
through ``idp apply`` each write exactly one audit event, in the change's
transaction, by the operator who ran the command (``cli:<os user>``, ``...:apply``),
with the connector's unit and never a secret. The log is read back with
``idp audit list``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from idp.cli import main
from idp.cli.units import actor
from idp.store.db import db
from idp.store.models import Unit
from tests.support import saml_flow
from tests.support.saml_sp import ServiceProvider

OKTA_SECRET = "okta-secret-value-1"  # a test value that must never reach the log
ROTATED_SECRET = "okta-secret-value-2"


def cli(runner: FlaskCliRunner, *args: str) -> Any:
    result = runner.invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def cursor(runner: FlaskCliRunner) -> int:
    """The cursor after the newest committed event."""
    after = 0
    while True:
        page = cli(runner, "audit", "list", "--after", str(after), "--limit", "1000")
        if not page["events"]:
            return after
        after = int(page["next_cursor"])


def events_after(runner: FlaskCliRunner, after: int) -> list[dict[str, Any]]:
    """The events committed after ``after``, read through ``idp audit list``."""
    return list(cli(runner, "audit", "list", "--after", str(after))["events"])


def one_event(runner: FlaskCliRunner, after: int, action: str, target: str,
              who: str | None = None) -> dict[str, Any]:
    """The single event since ``after``: ``action`` on ``target`` by the CLI's
    operator (``who``: the expected display, default ``cli:<os user>``)."""
    found = events_after(runner, after)
    assert [(e["action"], e["target"]) for e in found] == [(action, target)], found
    event = found[0]
    assert event["actor"]["kind"] == "operator"
    assert event["actor"]["display"] == (who or actor())
    return event


def no_secret_in(events: list[dict[str, Any]], *secrets: str) -> None:
    text = json.dumps(events)
    for secret in secrets:
        assert secret not in text


def make_unit(app: Flask, slug: str = "acme", name: str = "ACME GmbH") -> str:
    with app.app_context():
        unit = Unit(name=name, slug=slug)
        db.session.add(unit)
        db.session.commit()
        return unit.id


def test_clients_create_update_logout_channels_delete_write_one_event_each(
    runner: FlaskCliRunner,
) -> None:
    start = cursor(runner)
    made = cli(runner, "clients", "create", "--name", "Shop",
               "--redirect-uri", "https://shop.example/cb")
    client_id, secret = made["client_id"], made["client_secret"]
    assert secret
    created = one_event(runner, start, "client.create", client_id)
    assert created["details"] == {"name": "Shop",
                                  "token_endpoint_auth_method": "client_secret_basic"}
    assert created["unit_id"] is None  # a merchant belongs to no unit

    mark = cursor(runner)
    cli(runner, "clients", "update", client_id, "--name", "Shop 2",
        "--redirect-uri", "https://shop.example/cb2")
    updated = one_event(runner, mark, "client.update", client_id)
    assert updated["details"] == {"fields": ["name", "redirect_uris"]}

    mark = cursor(runner)  # a new auth method: a new secret, named but never shown
    moved = cli(runner, "clients", "update", client_id, "--auth-method", "none")
    assert moved["client_secret"] is None
    assert one_event(runner, mark, "client.update", client_id)["details"] == {
        "fields": ["client_secret", "token_endpoint_auth_method"]}
    mark = cursor(runner)
    again = cli(runner, "clients", "update", client_id, "--auth-method", "client_secret_post")
    assert again["client_secret"]
    one_event(runner, mark, "client.update", client_id)

    mark = cursor(runner)
    cli(runner, "clients", "logout-channels", client_id,
        "--frontchannel-uri", "https://shop.example/logout")
    assert one_event(runner, mark, "client.update", client_id)["details"] == {
        "fields": ["frontchannel_logout_uri"]}

    mark = cursor(runner)  # a change that changes nothing writes nothing
    cli(runner, "clients", "update", client_id, "--name", "Shop 2")
    assert events_after(runner, mark) == []

    cli(runner, "clients", "delete", client_id)
    assert one_event(runner, mark, "client.delete", client_id)["details"] == {"name": "Shop 2"}
    no_secret_in(events_after(runner, start), secret, again["client_secret"])


@pytest.fixture
def sp(client: FlaskClient) -> ServiceProvider:
    return ServiceProvider(saml_flow.idp_metadata(client))


def test_saml_sps_add_and_delete_are_audited_as_the_cli_operator(
    runner: FlaskCliRunner, sp: ServiceProvider, tmp_path: Path
) -> None:
    metadata = tmp_path / "sp.xml"
    metadata.write_bytes(sp.metadata())
    start = cursor(runner)
    cli(runner, "saml", "sps", "add", "--metadata", str(metadata), "--name", "Office")
    assert one_event(runner, start, "saml_sp.add", sp.entity_id)["details"] == {
        "name": "Office"}
    mark = cursor(runner)
    cli(runner, "saml", "sps", "delete", sp.entity_id)
    one_event(runner, mark, "saml_sp.delete", sp.entity_id)


def test_connectors_add_set_delete_carry_the_unit_and_no_secret(
    app: Flask, runner: FlaskCliRunner
) -> None:
    unit_id = make_unit(app)
    start = cursor(runner)
    made = cli(runner, "connectors", "add", "--unit", "acme", "--kind", "google",
               "--hd", "acme.example", "--client-id", "cid",
               "--client-secret", OKTA_SECRET)
    created = one_event(runner, start, "connector.create", made["id"])
    assert created["unit_id"] == unit_id
    assert created["details"] == {"kind": "google", "name": "Google Workspace",
                                  "enabled": True}

    mark = cursor(runner)
    cli(runner, "connectors", "set", made["id"], "--scim-external-id-claim", "sub")
    updated = one_event(runner, mark, "connector.update", made["id"])
    assert updated["unit_id"] == unit_id
    assert updated["details"] == {"fields": ["scim_external_id_claim"]}

    mark = cursor(runner)
    cli(runner, "connectors", "delete", made["id"])
    assert one_event(runner, mark, "connector.delete", made["id"])["unit_id"] == unit_id
    no_secret_in(events_after(runner, start), OKTA_SECRET)


APPLY = """
version: 1
units:
  - slug: acme
    name: ACME GmbH
    connectors:
      - name: ACME Okta
        kind: okta
        issuer: https://acme.okta.example
        client_id: 0oa1example
        client_secret_env: CLIENTAUDIT_TEST_OKTA_SECRET
        {enabled}
clients:
  - name: Office Supplies Shop
    redirect_uris: [{redirect}]
"""

WITHOUT_CONNECTORS = """
version: 1
units:
  - slug: acme
    name: ACME GmbH
    connectors: []
"""


def apply(runner: FlaskCliRunner, tmp_path: Path, text: str) -> Any:
    path = tmp_path / "unitgate.yaml"
    path.write_text(text)
    return cli(runner, "apply", str(path))


def test_apply_audits_each_client_and_connector_change_once_as_the_cli_operator(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    who = f"{actor()}:apply"
    unit_id = make_unit(app)
    monkeypatch.setenv("CLIENTAUDIT_TEST_OKTA_SECRET", OKTA_SECRET)
    start = cursor(runner)
    result = apply(runner, tmp_path, APPLY.format(
        enabled="enabled: false", redirect="https://shop.example/cb"))
    client_id = result["client_secrets"][0]["client_id"]
    found = events_after(runner, start)
    assert sorted((e["action"], e["actor"]["display"]) for e in found) == [
        ("client.create", who), ("connector.create", who)]
    connector = next(e for e in found if e["action"] == "connector.create")
    assert connector["unit_id"] == unit_id
    assert connector["details"]["enabled"] is False  # created disabled, in one event
    assert next(e for e in found if e["action"] == "client.create")["target"] == client_id
    connector_id = connector["target"]

    mark = cursor(runner)  # the secret rotated, the connector enabled, the client moved
    monkeypatch.setenv("CLIENTAUDIT_TEST_OKTA_SECRET", ROTATED_SECRET)
    apply(runner, tmp_path, APPLY.format(enabled="enabled: true",
                                         redirect="https://shop.example/cb2"))
    found = events_after(runner, mark)
    assert sorted((e["action"], e["target"], e["actor"]["display"]) for e in found) == [
        ("client.update", client_id, who), ("connector.update", connector_id, who)]
    by_action = {e["action"]: e for e in found}
    assert by_action["connector.update"]["details"] == {"fields": ["enabled", "secret"]}
    assert by_action["connector.update"]["unit_id"] == unit_id
    assert by_action["client.update"]["details"] == {"fields": ["redirect_uris"]}

    mark = cursor(runner)
    apply(runner, tmp_path, WITHOUT_CONNECTORS)
    one_event(runner, mark, "connector.delete", connector_id, who)
    no_secret_in(events_after(runner, start), OKTA_SECRET, ROTATED_SECRET,
                 result["client_secrets"][0]["client_secret"])
