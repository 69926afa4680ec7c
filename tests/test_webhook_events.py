"""Webhook events from their real producers (issue 13, item 5): administrators
adding, suspending and removing accesses through the API, invitations, a SCIM client;
each event arrives at a real receiver once, verified by ``standardwebhooks``, its
payload valid against the published schema and free of secrets. A change that is
refused stages no event. The CLI (``idp webhooks``, ``idp exports signins``) and the
audit export (API and ``idp audit export``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from idp.cli import main
from idp.release import signins
from idp.store.db import db
from idp.store.models import Merchant, WebhookDelivery
from idp.units import registry as units
from idp.webhooks import delivery
from tests.support.api import api_for
from tests.support.scim import USER, Scim, body, create_token, make_unit
from tests.support.webhook_receiver import Receiver, free_port


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"webhook_allow_private": True}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver(free_port(), [])
    yield made.start()
    made.stop()


def _validate_all(client: FlaskClient, app: Flask, got: list[Any]) -> None:
    doc = api_for(app, client).get("/events/schema").get_json()
    for item in got:
        jsonschema.validate(item.payload, doc["events"][item.payload["type"]]["json_schema"])
        text = json.dumps(item.payload).lower()
        assert "secret" not in text and "token" not in text and "code" not in text


def test_access_and_invitation_events_arrive_once_and_match_the_schema(
    app: Flask, client: FlaskClient, receiver: Receiver
) -> None:
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
    api = api_for(app, client, "acme")
    made = api.post(f"/units/{acme}/webhooks", json={"url": receiver.url}).get_json()
    receiver.secrets = [made["secret"]]
    contact = api.post(f"/units/{acme}/contacts", json={
        "email": "otto@acme.example", "given_name": "Otto", "family_name": "Ort",
        "roles": ["operational_contact"], "platform_access": True}).get_json()
    access_id = contact["access_id"]
    # Refused: the same address again (409) stages no event.
    again = api.post(f"/units/{acme}/contacts", json={
        "email": "otto@acme.example", "given_name": "O", "family_name": "O",
        "roles": [], "platform_access": False})
    assert again.status_code == 409
    assert api.post(f"/units/{acme}/accesses/{access_id}/suspend").status_code == 200
    assert api.delete(f"/units/{acme}/accesses/{access_id}").status_code == 204
    assert delivery.deliver_due(app) == 4
    types = [r.payload["type"] for r in receiver.got]
    assert sorted(types) == ["access.created", "access.removed", "access.suspended",
                             "invitation.sent"]
    assert len(set(receiver.ids())) == 4 and not receiver.rejected
    created = next(r.payload["data"] for r in receiver.got if r.payload["type"] ==
                   "access.created")
    assert created["access_id"] == access_id and created["status"] == "invited"
    assert created["source"] == "client"
    _validate_all(client, app, receiver.got)


def test_an_endpoint_hears_only_the_types_it_subscribed_and_only_its_unit(
    app: Flask, client: FlaskClient, receiver: Receiver
) -> None:
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
        globex = units.create("Globex", slug="globex").id
    api = api_for(app, client, "acme")
    made = api.post(f"/units/{acme}/webhooks", json={
        "url": receiver.url, "events": ["access.removed"]}).get_json()
    receiver.secrets = [made["secret"]]
    for unit, who in ((acme, "acme"), (globex, "globex")):
        api_for(app, client, who).post(f"/units/{unit}/contacts", json={
            "email": f"p@{who}.example", "given_name": "P", "family_name": "Q",
            "roles": [], "platform_access": False})
    assert delivery.deliver_due(app) == 0
    with app.app_context():
        assert db.session.query(WebhookDelivery).count() == 0


def test_scim_changes_are_announced(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, receiver: Receiver
) -> None:
    unit = make_unit(app, "acme", verified=("acme.example",))
    api = api_for(app, client, "acme")
    made = api.post(f"/units/{unit}/webhooks", json={
        "url": receiver.url, "events": ["scim.changed"]}).get_json()
    receiver.secrets = [made["secret"]]
    hr = Scim(client, create_token(runner, "acme"))
    user = body(hr.post("/Users", {"schemas": [USER], "userName": "ann@acme.example",
                                   "name": {"givenName": "Ann", "familyName": "A"}}), 201)
    assert hr.delete(f"/Users/{user['id']}").status_code == 204
    assert delivery.deliver_due(app) == 2
    ops = [r.payload["data"]["operation"] for r in receiver.got]
    assert sorted(ops) == ["created", "deleted"]
    assert {r.payload["data"]["account_id"] for r in receiver.got} == {user["id"]}
    _validate_all(client, app, receiver.got)


def test_the_webhooks_cli(app: Flask, receiver: Receiver) -> None:
    with app.app_context():
        units.create("ACME", slug="acme")
    cli = app.test_cli_runner()

    def run(*args: str) -> dict[str, Any]:
        result = cli.invoke(main, list(args))
        assert result.exit_code == 0, result.output
        out: dict[str, Any] = json.loads(result.output)
        return out

    made = run("webhooks", "add", "--unit", "acme", "--url", receiver.url,
               "--event", "access.created", "--json")
    assert made["id"] and made["secret"].startswith("whsec_")
    listed = run("webhooks", "list", "--unit", "acme", "--json")["webhooks"]
    assert [w["id"] for w in listed] == [made["id"]] and "secret" not in listed[0]
    rotated = run("webhooks", "rotate-secret", made["id"], "--json")
    assert rotated["secret"] != made["secret"]
    receiver.secrets = [made["secret"], rotated["secret"]]
    with app.app_context():
        from idp.accounts import invites
        from idp.rights import SYSTEM

        acme = units.get("acme").id
        invites.add_contact(acme, invites.NewContact(
            email="p@acme.example", given_name="P", family_name="Q", mobile=None,
            roles=[], platform_access=False, notifications=None, send_welcome=False,
            language="en"), SYSTEM)
    assert delivery.deliver_due(app) == 1
    sent = run("webhooks", "deliveries", made["id"], "--json")["deliveries"]
    assert [d["status"] for d in sent] == ["sent"]
    assert run("webhooks", "redeliver", sent[0]["id"], "--json")["status"] == "pending"
    assert delivery.deliver_due(app) == 1
    assert receiver.ids() == [sent[0]["id"], sent[0]["id"]]
    refused = cli.invoke(main, ["webhooks", "add", "--unit", "acme", "--url",
                                receiver.url, "--event", "nope", "--json"]
                         )
    assert refused.exit_code == 1 and json.loads(refused.output)["error"] == (
        "unknown_event_type")
    assert run("webhooks", "remove", made["id"], "--json")["removed"] is True
    assert run("webhooks", "list", "--unit", "acme", "--json")["webhooks"] == []


def test_the_signins_export_streams_csv_and_json_lines(app: Flask) -> None:
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
        merchant = Merchant(name="Shop", protocol="oidc", identifier="shop")
        from idp.accounts import invites
        from idp.rights import SYSTEM

        made = invites.add_contact(acme, invites.NewContact(
            email="p@acme.example", given_name="P", family_name="Q", mobile=None,
            roles=[], platform_access=False, notifications=None, send_welcome=False,
            language="en"), SYSTEM)
        db.session.add(merchant)
        db.session.flush()
        merchant_id = merchant.id
        db.session.commit()
        old_batch = signins.EXPORT_BATCH
        signins.EXPORT_BATCH = 2  # several batches
        for _ in range(5):
            signins.record(made.account.id, merchant_id, acme, "oidc", ["email"])
    try:
        cli = app.test_cli_runner()
        out = cli.invoke(main, ["exports", "signins", "--unit", "acme", "--since",
                                "2000-01-01", "--format", "csv"])
        assert out.exit_code == 0, out.output
        rows = list(csv.DictReader(io.StringIO(out.output)))
        assert len(rows) == 5 and len({r["id"] for r in rows}) == 5
        assert rows[0]["merchant_id"] == merchant_id and rows[0]["released"] == "email"
        assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)
        out = cli.invoke(main, ["exports", "signins", "--unit", "acme", "--since",
                                rows[3]["at"], "--format", "jsonl"])
        lines = [json.loads(x) for x in out.output.splitlines()]
        assert [x["id"] for x in lines] == [r["id"] for r in rows[3:]]
    finally:
        signins.EXPORT_BATCH = old_batch


def test_the_audit_export_is_resumable_json_lines(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
        units.create("Globex", slug="globex")
    api = api_for(app, client, "acme")
    for i in range(3):
        api.post(f"/units/{acme}/contacts", json={
            "email": f"p{i}@acme.example", "given_name": "P", "family_name": "Q",
            "roles": [], "platform_access": False})
    resp = api.get(f"/units/{acme}/audit/export")
    assert resp.status_code == 200 and resp.mimetype == "application/jsonl"
    lines = [json.loads(x) for x in resp.get_data(as_text=True).splitlines()]
    seqs = [x["seq"] for x in lines]
    assert len(lines) >= 3 and seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert {x["unit_id"] for x in lines} == {acme}
    rest = api.get(f"/units/{acme}/audit/export?after={seqs[0]}&limit=1")
    assert [json.loads(x)["seq"] for x in rest.get_data(as_text=True).splitlines()] == [
        seqs[1]]
    other = api_for(app, client, "globex")
    assert other.get(f"/units/{acme}/audit/export").status_code == 404
    assert other.get("/audit/export").status_code in (403, 404)
    operator = api_for(app, client).get("/audit/export?after=0")
    assert operator.status_code == 200
    every = [json.loads(x)["seq"] for x in operator.get_data(as_text=True).splitlines()]
    assert set(seqs) <= set(every)
    out = app.test_cli_runner().invoke(main, ["audit", "export", "--unit", "acme", "--after",
                                    str(seqs[0])])
    assert out.exit_code == 0, out.output
    assert [json.loads(x)["seq"] for x in out.output.splitlines()] == seqs[1:]


def test_a_sign_in_at_a_merchant_and_a_withdrawn_consent_are_announced(
    app: Flask, client: FlaskClient, receiver: Receiver
) -> None:
    from idp.release import consent
    from idp.rights import SYSTEM
    from idp.webhooks import endpoints
    from tests.support import oidc
    from tests.support.merchants import merchant_id

    ann = oidc.make_account(app)
    unit = oidc.make_unit(app, ann, roles=["employee"])
    with app.app_context():
        made = endpoints.create(unit, receiver.url, ["signin.succeeded", "consent.granted",
                                                     "consent.withdrawn"], "", SYSTEM)
    receiver.secrets = [made.secret]
    shop = oidc.register(app)
    oidc.sign_in(app, client, shop, ann, unit_id=unit)
    shop_id = merchant_id(app, shop.client_id)
    with app.app_context():
        consent.grant(ann, shop_id, ["openid", "email"], [])
        assert consent.revoke(ann, shop_id) is True
    assert delivery.deliver_due(app) >= 2
    by_type = {r.payload["type"]: r.payload["data"] for r in receiver.got}
    assert by_type["signin.succeeded"] == {
        "account_id": ann, "unit_id": unit, "merchant_id": shop_id, "protocol": "oidc"}
    assert by_type["consent.withdrawn"] == {
        "account_id": ann, "unit_id": unit, "merchant_id": shop_id}
    assert by_type["consent.granted"]["scopes"] == ["email", "openid"]
    assert len(set(receiver.ids())) == len(receiver.ids()) and not receiver.rejected
    _validate_all(client, app, receiver.got)
