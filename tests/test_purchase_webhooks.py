"""Purchase events reach the unit's expense and accounting webhooks (issues 13 and
17): each decision arrives at a real receiver once, verified with the
``standardwebhooks`` package, valid against the published schema; a refused request
that records nothing sends nothing."""

from __future__ import annotations

from collections.abc import Iterator

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.cli import main
from idp.units import registry as units
from idp.webhooks import delivery
from tests.support.api import api_for, assert_problem
from tests.support.purchases import Shop, merchant, person, token
from tests.support.webhook_receiver import Receiver, free_port


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"webhook_allow_private": True}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver(free_port(), [])
    yield made.start()
    made.stop()


def test_each_purchase_event_arrives_once_and_matches_its_schema(
    app: Flask, client: FlaskClient, receiver: Receiver
) -> None:
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
    ann = person(app, "ann@acme.example", acme, ["employee"])
    res = app.test_cli_runner().invoke(main, [
        "budgets", "set", "--unit", "acme", "--access", "ann@acme.example", "--period",
        "month", "--amount", "100.00", "--currency", "EUR", "--json"])
    assert res.exit_code == 0, res.output
    api = api_for(app, client, "acme")
    made = api.post(f"/units/{acme}/webhooks", json={"url": receiver.url, "events": [
        "purchase.approved", "purchase.refused", "purchase.confirmed",
        "purchase.cancelled", "purchase.amount_changed"]})
    assert made.status_code == 201, made.get_data(as_text=True)
    receiver.secrets = [made.get_json()["secret"]]

    shop = Shop(client, token(app, client, merchant(app), ann, acme))
    first = shop.buy("40.00", order_ref="PO-1").get_json()
    second = shop.buy("30.00", order_ref="PO-2").get_json()
    assert shop.buy("40.00", order_ref="PO-3").get_json()["reason"] == "over_budget"
    assert_problem(shop.buy("1.001"), 422)  # refused input: no purchase, no event
    shop.post(f"/{first['id']}/confirm")
    shop.post(f"/{second['id']}/amount", {"amount": "25.50"})
    shop.post(f"/{second['id']}/cancel")

    assert delivery.deliver_due(app) == 6
    assert not receiver.rejected and len(set(receiver.ids())) == 6
    got = [(r.payload["type"], r.payload["data"]["order_ref"]) for r in receiver.got]
    assert sorted(got) == sorted([
        ("purchase.approved", "PO-1"), ("purchase.approved", "PO-2"),
        ("purchase.refused", "PO-3"), ("purchase.confirmed", "PO-1"),
        ("purchase.amount_changed", "PO-2"), ("purchase.cancelled", "PO-2")])
    changed = next(r.payload["data"] for r in receiver.got
                   if r.payload["type"] == "purchase.amount_changed")
    assert changed["amount"] == "25.50" and changed["currency"] == "EUR"
    assert changed["account_id"] == ann and changed["unit_id"] == acme
    refused = next(r.payload["data"] for r in receiver.got
                   if r.payload["type"] == "purchase.refused")
    assert refused["reason"] == "over_budget"
    schema = api.get("/events/schema").get_json()["events"]
    for r in receiver.got:
        jsonschema.validate(r.payload, schema[r.payload["type"]]["json_schema"])


def test_the_purchases_file_export_for_systems_that_import_files(
    app: Flask, client: FlaskClient, tmp_path: object
) -> None:
    import csv
    import io
    import json

    with app.app_context():
        acme = units.create("ACME", slug="acme").id
    ann = person(app, "ann@acme.example", acme, ["employee"])
    res = app.test_cli_runner().invoke(main, [
        "budgets", "set", "--unit", "acme", "--access", "ann@acme.example", "--period",
        "month", "--amount", "100.00", "--currency", "EUR", "--json"])
    assert res.exit_code == 0, res.output
    shop = Shop(client, token(app, client, merchant(app), ann, acme))
    shop.buy("40.00", order_ref="=HYPERLINK(\"http://evil\")")
    shop.buy("70.00", order_ref="PO-2")  # over budget: refused, still a purchase
    runner = app.test_cli_runner()
    out = runner.invoke(main, ["exports", "purchases", "--unit", "acme", "--since",
                               "2000-01-01T00:00:00Z"])
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert {(r["order_ref"], r["status"], r["amount"]) for r in rows} == {
        ("'=HYPERLINK(\"http://evil\")", "approved", "40.00"), ("PO-2", "refused", "70.00")}
    lines = runner.invoke(main, ["exports", "purchases", "--unit", "acme", "--since",
                                 "2000-01-01T00:00:00Z", "--format", "jsonl"])
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    assert {r["order_ref"] for r in records} == {"=HYPERLINK(\"http://evil\")", "PO-2"}
    later = runner.invoke(main, ["exports", "purchases", "--unit", "acme", "--since",
                                 "2999-01-01T00:00:00Z", "--format", "jsonl"])
    assert later.exit_code == 0 and later.stdout == ""
    bad = runner.invoke(main, ["exports", "purchases", "--unit", "acme", "--since", "soon"])
    assert bad.exit_code != 0 and "ISO 8601" in bad.output
