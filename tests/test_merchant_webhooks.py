"""The merchant learns each purchase decision by a webhook (issue 17, item 3): an
endpoint of the merchant's own client (operator-managed, ``purchase.*`` only) gets
the decisions about the purchases made through that client, through the same
delivery engine (Standard Webhooks, verified by a real receiver with the
``standardwebhooks`` package). End to end: the employee's token with the
``purchases`` scope, an order over the limit waits, the approver approves through
the e-mailed link (a real SMTP server), the merchant's receiver gets
``purchase.approved`` once and, after its confirmation, ``purchase.confirmed``;
another merchant hears nothing; a unit's administrator cannot touch a client's
webhooks; a merchant endpoint cannot subscribe to other events."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.cli import main
from idp.units import registry as units
from idp.webhooks import delivery
from tests.support.api import api_for, assert_problem
from tests.support.caches import statements
from tests.support.login import csrf_token, path_of, submit_code, submit_email
from tests.support.purchases import Shop, employee_budget, merchant, person, token
from tests.support.smtp import SmtpSink, code_in, text_of
from tests.support.webhook_receiver import Receiver, free_port

LINK_RE = re.compile(r"(http://localhost/account/approvals/[0-9a-f]{32}\?link=\S+)")


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink) -> dict[str, object]:
    return {"smtp_url": smtp_server.url, "webhook_allow_private": True}


def _receiver() -> Receiver:
    return Receiver(free_port(), []).start()


@pytest.fixture
def shop_hook() -> Iterator[Receiver]:
    made = _receiver()
    yield made
    made.stop()


@pytest.fixture
def other_hook() -> Iterator[Receiver]:
    made = _receiver()
    yield made
    made.stop()


@pytest.fixture
def acme(app: Flask) -> str:
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
    employee_budget(app)
    return acme


def _sign_in(web: FlaskClient, smtp: SmtpSink, email: str) -> None:
    resp = web.get("/account")
    login = path_of(resp)
    after = len(smtp.messages)
    submit_email(web, login, email)
    resp = submit_code(web, login, code_in(smtp.last_to(email, after=after)))
    assert resp.status_code == 303
    web.get(resp.headers["Location"])


def _link(smtp: SmtpSink, email: str, after: int) -> str:
    found = LINK_RE.search(text_of(smtp.last_to(email, after=after)))
    assert found, "no approval link in the e-mail"
    parts = urlsplit(found.group(1))
    return f"{parts.path}?{parts.query}"


def _post(web: FlaskClient, page: str, **data: str) -> object:
    html = web.get(page).get_data(as_text=True)
    return web.post(page.split("?")[0], data={"csrf_token": csrf_token(html), **data})


def _drain(app: Flask) -> None:
    while delivery.deliver_due(app):
        pass


def test_the_merchant_hears_the_approvers_decision_and_its_confirmation(
    app: Flask, client: FlaskClient, smtp_server: SmtpSink, acme: str,
    shop_hook: Receiver, other_hook: Receiver,
) -> None:
    ann = person(app, "ann@acme.example", acme, ["employee"])
    person(app, "max@acme.example", acme, ["commercial_contact"])
    rp, other_rp = merchant(app, "Shop"), merchant(app, "Other shop")
    operator = api_for(app, client)
    made = operator.post(f"/clients/{rp.client_id}/webhooks", json={"url": shop_hook.url})
    assert made.status_code == 201, made.get_data(as_text=True)
    assert made.get_json()["client_id"] == rp.client_id and made.get_json()["unit_id"] is None
    shop_hook.secrets = [made.get_json()["secret"]]
    other = operator.post(f"/clients/{other_rp.client_id}/webhooks",
                          json={"url": other_hook.url, "events": ["purchase.approved"]})
    assert other.status_code == 201, other.get_data(as_text=True)
    other_hook.secrets = [other.get_json()["secret"]]

    # the shop holds the employee's token with the purchases scope; the order is over
    # the per-order limit: it waits for an approver
    shop = Shop(client, token(app, client, rp, ann, acme))
    after = len(smtp_server.messages)
    answer = shop.buy("80.00", order_ref="PO-80").get_json()
    assert answer["status"] == "pending_approval", answer
    _drain(app)
    assert [r.payload["type"] for r in shop_hook.got] == ["purchase.pending_approval"]

    # the approver approves through the e-mailed link, with an internal comment
    link = _link(smtp_server, "max@acme.example", after)
    web = app.test_client()
    _sign_in(web, smtp_server, "max@acme.example")
    assert _post(web, link, action="comment", comment="Secret internal note",
                 internal="1").status_code == 303
    assert _post(web, link, action="approve").status_code == 303
    _drain(app)
    approved = [r for r in shop_hook.got if r.payload["type"] == "purchase.approved"]
    assert len(approved) == 1
    data = approved[0].payload["data"]
    assert data["purchase_id"] == answer["id"] and data["order_ref"] == "PO-80"
    assert data["status"] == "approved" and data["amount"] == "80.00"
    assert data["client_id"] == rp.client_id and data["account_id"] == ann
    # the merchant then confirms
    assert shop.post(f"/{answer['id']}/confirm").get_json()["status"] == "confirmed"
    _drain(app)
    assert [r.payload["type"] for r in shop_hook.got] == [
        "purchase.pending_approval", "purchase.approved", "purchase.confirmed"]
    assert len(set(shop_hook.ids())) == 3 and not shop_hook.rejected
    assert all("Secret internal note" not in json.dumps(r.payload) for r in shop_hook.got)
    schema = operator.get("/events/schema").get_json()["events"]
    for r in shop_hook.got:
        jsonschema.validate(r.payload, schema[r.payload["type"]]["json_schema"])
    # another merchant's endpoint heard nothing of this purchase
    assert other_hook.got == [] and other_hook.rejected == []

    # the delivery log and redelivery work for the merchant's endpoint as for a unit's
    hook_id = made.get_json()["id"]
    log = operator.get(f"/clients/{rp.client_id}/webhooks/{hook_id}/deliveries").get_json()
    assert [d["status"] for d in log["items"]] == ["sent"] * 3
    first = log["items"][-1]["id"]
    again = operator.post(
        f"/clients/{rp.client_id}/webhooks/{hook_id}/deliveries/{first}/redeliver")
    assert again.status_code == 200, again.get_data(as_text=True)
    _drain(app)
    assert shop_hook.ids().count(first) == 2  # same webhook-id: the receiver dedupes


class TestExpiry:
    """Approvals that run out (``IDP_APPROVAL_HOURS`` made 1.8 seconds here)."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"webhook_allow_private": True, "approval_hours": 0.0005}

    def test_an_expired_approval_reaches_the_merchant(
        self, app: Flask, client: FlaskClient, acme: str, shop_hook: Receiver
    ) -> None:
        ann = person(app, "ann@acme.example", acme, ["employee"])
        person(app, "max@acme.example", acme, ["commercial_contact"])
        rp = merchant(app)
        res = app.test_cli_runner().invoke(main, [
            "webhooks", "add", "--client", rp.client_id, "--url", shop_hook.url,
            "--event", "purchase.refused", "--json"])
        assert res.exit_code == 0, res.output
        shop_hook.secrets = [json.loads(res.output)["secret"]]
        shop = Shop(client, token(app, client, rp, ann, acme))
        pending = shop.buy("70.00").get_json()
        assert pending["status"] == "pending_approval"
        time.sleep(0.0005 * 3600 + 0.5)
        res = app.test_cli_runner().invoke(main, ["purchases", "expire", "--json"])
        assert res.exit_code == 0 and json.loads(res.output)["expired"] == 1
        _drain(app)
        assert [(r.payload["type"], r.payload["data"]["purchase_id"],
                 r.payload["data"]["reason"]) for r in shop_hook.got] == [
            ("purchase.refused", pending["id"], "approval_expired")]


def test_only_the_operator_manages_merchant_endpoints_and_only_purchase_events(
    app: Flask, client: FlaskClient, acme: str, shop_hook: Receiver
) -> None:
    rp = merchant(app)
    unit_admin = api_for(app, client, "acme")
    path = f"/clients/{rp.client_id}/webhooks"
    assert_problem(unit_admin.post(path, json={"url": shop_hook.url}), 404)
    assert_problem(unit_admin.get(path), 404)
    operator = api_for(app, client)
    assert_problem(operator.post(path, json={"url": shop_hook.url,
                                             "events": ["access.created"]}),
                   422, "event_not_for_merchants")
    assert_problem(operator.post("/clients/nope/webhooks", json={"url": shop_hook.url}), 404)
    made = operator.post(path, json={"url": shop_hook.url, "events": ["purchase.approved"]})
    assert made.status_code == 201
    hook = made.get_json()["id"]
    assert_problem(unit_admin.get(f"{path}/{hook}"), 404)
    assert_problem(unit_admin.delete(f"{path}/{hook}"), 404)
    assert_problem(operator.patch(f"{path}/{hook}", json={"events": ["signin.succeeded"]}),
                   422, "event_not_for_merchants")
    changed = operator.patch(f"{path}/{hook}", json={"events": ["purchase.refused"]})
    assert changed.status_code == 200 and changed.get_json()["events"] == ["purchase.refused"]
    # a unit's list and a unit's path never show the merchant's endpoint
    assert unit_admin.get(f"/units/{acme}/webhooks").get_json()["items"] == []
    assert_problem(unit_admin.get(f"/units/{acme}/webhooks/{hook}"), 404)
    listed = operator.get(path).get_json()["items"]
    assert [w["id"] for w in listed] == [hook]
    # a client that makes no purchases gets no merchant endpoint
    plain = merchant(app, "Plain")
    res = app.test_cli_runner().invoke(main, [
        "clients", "update", plain.client_id, "--scope", "openid profile"])
    assert res.exit_code == 0, res.output
    assert_problem(operator.post(f"/clients/{plain.client_id}/webhooks",
                                 json={"url": shop_hook.url}), 422, "not_a_merchant")
    rotated = operator.post(f"{path}/{hook}/rotate-secret")
    assert rotated.status_code == 200 and rotated.get_json()["secret"].startswith("whsec_")
    assert_problem(unit_admin.post(f"{path}/{hook}/rotate-secret"), 404)
    assert operator.delete(f"{path}/{hook}").status_code == 204
    assert_problem(operator.get(f"{path}/{hook}"), 404)


def test_a_disabled_merchant_endpoint_hears_nothing(
    app: Flask, client: FlaskClient, acme: str, shop_hook: Receiver
) -> None:
    ann = person(app, "ann@acme.example", acme, ["employee"])
    rp = merchant(app)
    operator = api_for(app, client)
    made = operator.post(f"/clients/{rp.client_id}/webhooks", json={"url": shop_hook.url})
    shop_hook.secrets = [made.get_json()["secret"]]
    hook = made.get_json()["id"]
    off = operator.patch(f"/clients/{rp.client_id}/webhooks/{hook}", json={"enabled": False})
    assert off.status_code == 200 and off.get_json()["enabled"] is False
    shop = Shop(client, token(app, client, rp, ann, acme))
    assert shop.buy("5.00", order_ref="PO-off").get_json()["status"] == "approved"
    operator.patch(f"/clients/{rp.client_id}/webhooks/{hook}", json={"enabled": True})
    assert shop.buy("6.00", order_ref="PO-on").get_json()["status"] == "approved"
    _drain(app)
    assert [r.payload["data"]["order_ref"] for r in shop_hook.got] == ["PO-on"]


def test_a_client_without_endpoints_costs_no_query(
    app: Flask, client: FlaskClient, acme: str, shop_hook: Receiver
) -> None:
    """Once the per-process cache knows which clients have endpoints, a purchase
    through a client without one reads nothing from ``webhook_endpoints``; creating an
    endpoint for it is seen at once in this process."""
    ann = person(app, "ann@acme.example", acme, ["employee"])
    rp = merchant(app)
    shop = Shop(client, token(app, client, rp, ann, acme))
    assert shop.buy("1.00").get_json()["status"] == "approved"  # warms the cache
    with statements(app) as seen:
        assert shop.buy("2.00").get_json()["status"] == "approved"
    assert seen and not [q for q in seen if "webhook_endpoints" in q]
    made = api_for(app, client).post(f"/clients/{rp.client_id}/webhooks",
                                     json={"url": shop_hook.url})
    shop_hook.secrets = [made.get_json()["secret"]]
    assert shop.buy("3.00", order_ref="PO-3").get_json()["status"] == "approved"
    _drain(app)
    assert [r.payload["data"]["order_ref"] for r in shop_hook.got] == ["PO-3"]


def test_the_cli_adds_and_lists_a_merchants_endpoints(
    app: Flask, shop_hook: Receiver
) -> None:
    rp = merchant(app)
    runner = app.test_cli_runner()
    res = runner.invoke(main, ["webhooks", "add", "--client", rp.client_id, "--url",
                               shop_hook.url, "--event", "purchase.approved", "--json"])
    assert res.exit_code == 0, res.output
    made = json.loads(res.output)
    assert made["client_id"] == rp.client_id and made["secret"].startswith("whsec_")
    res = runner.invoke(main, ["webhooks", "list", "--client", rp.client_id, "--json"])
    assert res.exit_code == 0 and [w["id"] for w in json.loads(res.output)["webhooks"]] == [
        made["id"]]
    res = runner.invoke(main, ["webhooks", "add", "--client", rp.client_id, "--url",
                               shop_hook.url, "--event", "access.created", "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["error"] == "event_not_for_merchants"
    res = runner.invoke(main, ["webhooks", "add", "--url", shop_hook.url, "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["error"] == "invalid_request"
    res = runner.invoke(main, ["webhooks", "list", "--client", "nope", "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["error"] == "not_found"
    # deleting the client deletes its endpoints (the foreign key cascades)
    res = runner.invoke(main, ["clients", "delete", rp.client_id, "--json"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["webhooks", "deliveries", made["id"], "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["error"] == "not_found"
