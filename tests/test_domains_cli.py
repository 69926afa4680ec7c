"""``idp domains ...``: every command's ``--json`` output, against the real test DNS
server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from idp.cli import main
from idp.store import connectors_repo
from idp.store.unit_of_work import atomic
from tests.support.dns import DnsServer


@pytest.fixture
def settings_overrides(dns_server: DnsServer) -> dict[str, object]:
    return {"dns_resolver": dns_server.address, "dns_timeout_seconds": 0.5}


def cli(runner: FlaskCliRunner, *args: str, code: int = 0) -> Any:
    result = runner.invoke(main, list(args))
    assert result.exit_code == code, result.output
    return json.loads(result.output)


@pytest.fixture
def unit_id(runner: FlaskCliRunner) -> str:
    return cli(runner, "units", "create", "--name", "ACME", "--slug", "acme", "--json")["id"]


def test_add_prints_the_txt_record(runner: FlaskCliRunner, unit_id: str) -> None:
    added = cli(runner, "domains", "add", "--unit", "acme", "acme.example", "--json")
    assert added["record_name"] == "_unitgate-challenge.acme.example"
    assert added["record_type"] == "TXT" and len(added["value"]) >= 32
    assert (added["domain"], added["state"]) == ("acme.example", "pending")
    assert added["unit_id"] == unit_id
    wild = cli(runner, "domains", "add", "--unit", "acme", "*.corp.example", "--json")
    assert wild["domain"] == "*.corp.example"
    assert wild["record_name"] == "_unitgate-challenge.corp.example"
    refused = cli(runner, "domains", "add", "--unit", "acme", "gmail.com", "--json", code=1)
    assert refused["error"] == "consumer_domain"
    nounit = cli(runner, "domains", "add", "--unit", "nope", "x.example", "--json", code=1)
    assert nounit["error"] == "not_found"
    plain = runner.invoke(main, ["domains", "add", "--unit", "acme", "shop.example"])
    assert plain.exit_code == 0 and "_unitgate-challenge.shop.example.  IN  TXT" in plain.output


def test_check_verify_list_and_show(
    runner: FlaskCliRunner, unit_id: str, dns_server: DnsServer
) -> None:
    added = cli(runner, "domains", "add", "--unit", "acme", "acme.example", "--json")
    cli(runner, "domains", "add", "--unit", "acme", "other.example", "--json")
    pending = cli(runner, "domains", "check", "--json")
    assert [(r["domain"], r["state"], r["outcome"]) for r in pending] == [
        ("acme.example", "pending", "absent"),
        ("other.example", "pending", "absent"),
    ]
    dns_server.set_txt(added["record_name"], added["value"])
    [checked] = cli(runner, "domains", "check", "acme.example", "--json")
    assert (checked["before"], checked["state"]) == ("pending", "verified")
    refused = cli(runner, "domains", "verify", "other.example", "--manual", "--json", code=1)
    assert refused["error"] == "reason_required"
    manual = cli(
        runner, "domains", "verify", "other.example", "--manual", "--reason",
        "verified with the registrar", "--json",
    )
    assert (manual["state"], manual["verified_method"]) == ("verified", "manual")
    assert manual["verification_note"] == "verified with the registrar"
    listed = cli(runner, "domains", "list", "--json")
    assert [(d["domain"], d["state"], d["in_force"]) for d in listed] == [
        ("acme.example", "verified", True),
        ("other.example", "verified", True),
    ]
    assert cli(runner, "domains", "list", "--unit", "acme", "--json") == listed
    shown = cli(runner, "domains", "show", "acme.example", "--json")
    assert shown["record_value"] == added["value"] and shown["verified_method"] == "dns"
    dns_server.remove(added["record_name"])
    [lapsed] = cli(runner, "domains", "check", "--all", "--json")
    assert (lapsed["domain"], lapsed["state"]) == ("acme.example", "failed")
    gone = cli(runner, "domains", "show", "nope.example", "--json", code=1)
    assert gone["error"] == "not_found"
    assert cli(runner, "domains", "remove", "other.example", "--json")["removed"] is True


def test_rules_and_explain(runner: FlaskCliRunner, app: Flask, unit_id: str) -> None:
    cli(runner, "units", "create", "--name", "Sales", "--parent", "acme", "--slug", "sales",
        "--json")
    cli(runner, "domains", "add", "--unit", "acme", "acme.example", "--json")
    cli(runner, "domains", "verify", "acme.example", "--manual", "--reason", "test", "--json")
    rules = cli(
        runner, "domains", "rules", "acme.example", "--auto-join", "--default-role",
        "operational_contact", "--subunit-attribute", "department", "--subunit",
        "Sales=sales", "--json",
    )
    assert rules == {
        "domain": "acme.example", "state": "verified", "auto_join": True,
        "default_role": "operational_contact", "require_sso": False,
        "sso_connector_id": None, "subunit_attribute": "department",
        "subunits": {"Sales": "sales"}, "break_glass": [],
    }
    no_conn = cli(runner, "domains", "rules", "acme.example", "--require-sso", "--json", code=1)
    assert no_conn["error"] == "no_connector"
    with app.app_context(), atomic():
        conn_id = connectors_repo.create(unit_id, "google", "Google", {}, None).id
    sso = cli(
        runner, "domains", "rules", "acme.example", "--require-sso", "--break-glass",
        "root@acme.example", "--json",
    )
    assert (sso["require_sso"], sso["sso_connector_id"]) == (True, conn_id)
    assert sso["break_glass"] == ["root@acme.example"]
    explained = cli(runner, "domains", "explain", "alice@acme.example", "--json")
    assert (explained["login_method"], explained["connector_id"]) == ("sso", conn_id)
    glass = cli(runner, "domains", "explain", "root@acme.example", "--attr",
                "department=Sales", "--json")
    assert (glass["login_method"], glass["unit"], glass["roles"]) == (
        "email_code", "sales", ["operational_contact"]
    )
    text = runner.invoke(main, ["domains", "explain", "root@acme.example"])
    assert text.exit_code == 0
    assert "unit:   acme (ACME), roles operational_contact" in text.output
    assert "break-glass address" in text.output
    off = cli(runner, "domains", "rules", "acme.example", "--no-require-sso",
              "--no-break-glass", "root@acme.example", "--no-auto-join", "--json")
    assert (off["require_sso"], off["auto_join"], off["break_glass"]) == (False, False, [])
    bad = runner.invoke(main, ["domains", "rules", "acme.example", "--subunit", "novalue"])
    assert bad.exit_code == 2
