"""Webhooks per unit (issue 13, item 5): Standard Webhooks signatures verified by the
``standardwebhooks`` package in a real local receiver; deliveries survive the
receiver being down (connection refused, then 503) and every event arrives exactly
once by ``webhook-id``; a rotation signs with both secrets; the SSRF defence; another
unit's admin sees nothing; an endpoint failing for days is disabled with a mail to
the unit's main users; the payloads sent match the published JSON Schemas."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.store.models import utcnow
from idp.store.unit_of_work import atomic
from idp.units import registry as units
from idp.webhooks import delivery, emit, targets
from tests.support.api import Api, api_for
from tests.support.webhook_receiver import Receiver, free_port


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"webhook_allow_private": True}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver(free_port(), [])
    yield made
    made.stop()


def _unit(app: Flask, name: str) -> str:
    with app.app_context():
        return units.create(name.title(), slug=name).id


def _add(api: Api, unit_id: str, url: str, **body: Any) -> dict[str, Any]:
    resp = api.post(f"/units/{unit_id}/webhooks", json={"url": url, **body})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    made: dict[str, Any] = resp.get_json()
    assert made["secret"].startswith("whsec_")
    return made


def _emit(app: Flask, unit_id: str, n: int) -> None:
    with app.app_context(), atomic():
        for i in range(n):
            emit(unit_id=unit_id, event_type="access.suspended",
                 data={"access_id": f"ac{i}", "account_id": f"a{i}", "unit_id": unit_id,
                       "source": "test"})


def test_deliveries_survive_the_receiver_being_down_and_arrive_once(
    app: Flask, client: FlaskClient, receiver: Receiver
) -> None:
    acme = _unit(app, "acme")
    api = api_for(app, client, "acme")
    made = _add(api, acme, receiver.url, events=["access.suspended"])
    receiver.secrets = [made["secret"]]
    _emit(app, acme, 3)
    t0 = utcnow()
    # Nobody listens: connection refused, logged, retried later.
    assert delivery.deliver_due(app, now=t0) == 0
    assert delivery.deliver_due(app, now=t0) == 0  # not due again yet
    receiver.down = True
    receiver.start()
    assert delivery.deliver_due(app, now=t0 + timedelta(seconds=6)) == 0  # 503
    receiver.down = False
    assert delivery.deliver_due(app, now=t0 + timedelta(minutes=1)) == 3
    assert delivery.deliver_due(app, now=t0 + timedelta(days=1)) == 0  # nothing twice
    assert len(receiver.ids()) == 3 and len(set(receiver.ids())) == 3
    assert not receiver.rejected

    page = api.get(f"/units/{acme}/webhooks/{made['id']}/deliveries").get_json()
    assert {d["id"] for d in page["items"]} == set(receiver.ids())
    one = page["items"][0]
    assert one["status"] == "sent" and one["attempts"] == 3
    codes = [a["status_code"] for a in one["log"]]
    assert sorted(codes, key=lambda c: c or 0) == [None, 204, 503]
    refused = next(a for a in one["log"] if a["status_code"] is None)
    assert "Connection" in refused["error"] or "refused" in refused["error"].lower()

    # Redelivery by hand: the same webhook-id again (receivers dedupe by it).
    resp = api.post(f"/units/{acme}/webhooks/{made['id']}/deliveries/{one['id']}/redeliver")
    assert resp.status_code == 200 and resp.get_json()["status"] == "pending"
    assert delivery.deliver_due(app) == 1
    assert receiver.ids().count(one["id"]) == 2 and len(set(receiver.ids())) == 3


def test_rotation_signs_with_both_secrets_during_the_overlap(
    app: Flask, client: FlaskClient, receiver: Receiver
) -> None:
    acme = _unit(app, "acme")
    api = api_for(app, client, "acme")
    made = _add(api, acme, receiver.url)
    resp = api.post(f"/units/{acme}/webhooks/{made['id']}/rotate-secret")
    assert resp.status_code == 200
    new = resp.get_json()["secret"]
    assert new != made["secret"] and new.startswith("whsec_")
    receiver.secrets = [made["secret"], new]  # each must verify on its own
    receiver.start()
    _emit(app, acme, 1)
    assert delivery.deliver_due(app) == 1
    assert len(receiver.got) == 1 and not receiver.rejected
    assert len(receiver.got[0].headers["webhook-signature"].split(" ")) == 2
    # After the overlap only the new secret signs.
    _emit(app, acme, 1)
    receiver.secrets = [made["secret"]]
    assert delivery.deliver_due(app, now=utcnow() + timedelta(hours=25)) == 0
    assert receiver.rejected
    receiver.secrets = [new]
    assert delivery.deliver_due(app, now=utcnow() + timedelta(hours=26)) == 1


def test_loopback_and_private_targets_are_refused_without_the_setting(
    app: Flask, client: FlaskClient, receiver: Receiver
) -> None:
    acme = _unit(app, "acme")
    api = api_for(app, client, "acme")
    made = _add(api, acme, receiver.url)  # allowed while the setting is on
    receiver.secrets = [made["secret"]]
    receiver.start()
    app.extensions["unitgate"].settings.webhook_allow_private = False
    for url, code in [
        (receiver.url, "https_required"),
        ("https://127.0.0.1/hooks", "private_address"),
        ("https://localhost/hooks", "private_address"),
        ("https://[::1]/hooks", "private_address"),
        ("https://[::ffff:127.0.0.1]/hooks", "private_address"),
        ("https://user:pw@example.invalid/", "invalid_url"),
        ("ftp://example.invalid/", "invalid_url"),
    ]:
        resp = api.post(f"/units/{acme}/webhooks", json={"url": url})
        assert resp.status_code == 422, (url, resp.get_data(as_text=True))
        assert resp.get_json()["code"] == code, url
    # The check runs again at delivery: the existing endpoint now gets nothing.
    _emit(app, acme, 1)
    assert delivery.deliver_due(app) == 0
    assert receiver.got == []
    page = api.get(f"/units/{acme}/webhooks/{made['id']}/deliveries").get_json()
    assert page["items"][0]["log"][0]["error"].startswith("refused")


@pytest.mark.parametrize("address", [
    "10.1.2.3", "172.16.0.1", "192.168.1.1", "127.0.0.1", "169.254.169.254", "0.0.0.0",
    "100.64.0.1", "224.0.0.1", "240.0.0.1", "::1", "::", "fe80::1", "fc00::1", "ff02::1",
    "::ffff:10.0.0.1", "::ffff:127.0.0.1",
])
def test_non_public_addresses_are_not_public(address: str) -> None:
    assert targets.is_public(address) is False


def test_public_addresses_are_public() -> None:
    assert targets.is_public("93.184.216.34") and targets.is_public("2606:4700::1111")


def test_another_units_admin_cannot_see_or_change_the_endpoints(
    app: Flask, client: FlaskClient, receiver: Receiver
) -> None:
    acme, globex = _unit(app, "acme"), _unit(app, "globex")
    made = _add(api_for(app, client, "acme"), acme, receiver.url)
    other = api_for(app, client, "globex")
    base = f"/units/{acme}/webhooks"
    assert other.get(base).status_code == 404
    assert other.get(f"{base}/{made['id']}").status_code == 404
    assert other.patch(f"{base}/{made['id']}", json={"enabled": False}).status_code == 404
    assert other.delete(f"{base}/{made['id']}").status_code == 404
    assert other.post(f"{base}/{made['id']}/rotate-secret").status_code == 404
    # Through its own unit's path the endpoint is not found either.
    own = f"/units/{globex}/webhooks/{made['id']}"
    assert other.get(own).status_code == 404
    assert other.delete(own).status_code == 404
    assert other.get(f"/units/{globex}/webhooks").get_json()["items"] == []
    mine = api_for(app, client, "acme").get(f"{base}/{made['id']}")
    assert mine.status_code == 200 and mine.get_json()["enabled"] is True
    assert "secret" not in mine.get_json()


def test_an_endpoint_failing_for_days_is_disabled_and_the_main_users_told(
    app: Flask, client: FlaskClient
) -> None:
    from idp.accounts import accesses, invites
    from idp.rights import SYSTEM
    from idp.store.db import db
    from idp.store.models import OutboxMessage

    acme = _unit(app, "acme")
    with app.app_context():
        made_contact = invites.add_contact(acme, invites.NewContact(
            email="boss@acme.example", given_name="Bo", family_name="Ss", mobile=None,
            roles=["main_user"], platform_access=True, notifications=None,
            send_welcome=False, language="en"), SYSTEM)
        with atomic():
            assert accesses.activate(made_contact.account.id, acme, "test")
    api = api_for(app, client, "acme")
    made = _add(api, acme, f"http://127.0.0.1:{free_port()}/down")
    _emit(app, acme, 1)
    t0 = utcnow()
    assert delivery.deliver_due(app, now=t0) == 0
    _emit(app, acme, 1)
    assert delivery.deliver_due(app, now=t0 + timedelta(days=4)) == 0
    assert api.get(f"/units/{acme}/webhooks/{made['id']}").get_json()["enabled"] is True
    assert delivery.deliver_due(app, now=t0 + timedelta(days=5, minutes=1)) == 0
    got = api.get(f"/units/{acme}/webhooks/{made['id']}").get_json()
    assert got["enabled"] is False and got["disabled_reason"] == "failing"
    with app.app_context():
        mails = [m.payload for m in db.session.query(OutboxMessage).all()
                 if m.payload.get("template") == "webhook_disabled"]
    assert [m["to"] for m in mails] == ["boss@acme.example"]
    # Disabled: new events are not even staged; enabling again clears the record.
    _emit(app, acme, 1)
    resp = api.patch(f"/units/{acme}/webhooks/{made['id']}", json={"enabled": True})
    assert resp.get_json()["enabled"] is True and resp.get_json()["failing_since"] is None


def test_the_published_schemas_validate_the_payloads_sent(
    app: Flask, client: FlaskClient, receiver: Receiver
) -> None:
    acme = _unit(app, "acme")
    api = api_for(app, client, "acme")
    made = _add(api, acme, receiver.url)
    receiver.secrets = [made["secret"]]
    receiver.start()
    _emit(app, acme, 1)
    assert delivery.deliver_due(app) == 1
    doc = api.get("/events/schema").get_json()
    assert "access.created" in doc["events"]
    for got in receiver.got:
        schema = doc["events"][got.payload["type"]]["json_schema"]
        jsonschema.validate(got.payload, schema)
    bad = dict(receiver.got[0].payload, data={"access_id": "x"})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, doc["events"]["access.suspended"]["json_schema"])


def test_unknown_event_types_are_refused(app: Flask, client: FlaskClient) -> None:
    acme = _unit(app, "acme")
    api = api_for(app, client, "acme")
    resp = api.post(f"/units/{acme}/webhooks", json={
        "url": "http://127.0.0.1:9/x", "events": ["nope.nothing"]})
    assert resp.status_code == 422 and resp.get_json()["code"] == "unknown_event_type"


def test_redirects_are_not_followed_and_the_answer_is_capped(
    app: Flask, client: FlaskClient, receiver: Receiver
) -> None:
    acme = _unit(app, "acme")
    api = api_for(app, client, "acme")
    made = _add(api, acme, receiver.url)
    receiver.answer = 302
    receiver.start()
    _emit(app, acme, 1)
    assert delivery.deliver_due(app) == 0
    assert len(receiver.hits) == 1  # the Location was not followed
    log = api.get(f"/units/{acme}/webhooks/{made['id']}/deliveries").get_json()
    attempt = log["items"][0]["log"][0]
    assert attempt["status_code"] == 302 and attempt["error"] == "HTTP 302"
    assert len(attempt["response"]) <= 1000


def test_the_request_goes_to_the_checked_address_with_the_host_name_kept(
    app: Flask, client: FlaskClient, receiver: Receiver
) -> None:
    acme = _unit(app, "acme")
    api = api_for(app, client, "acme")
    made = _add(api, acme, f"http://localhost:{receiver.port}/hooks")
    receiver.secrets = [made["secret"]]
    receiver.start()
    _emit(app, acme, 1)
    assert delivery.deliver_due(app) == 1
    assert receiver.got[0].headers["host"] == f"localhost:{receiver.port}"


def test_the_delivery_loop_sends_in_the_background(
    app: Flask, client: FlaskClient, receiver: Receiver
) -> None:
    import time

    acme = _unit(app, "acme")
    made = _add(api_for(app, client, "acme"), acme, receiver.url)
    receiver.secrets = [made["secret"]]
    receiver.start()
    loop = delivery.start_delivery_thread(app, interval=0.1)
    try:
        _emit(app, acme, 2)
        deadline = time.monotonic() + 10
        while len(receiver.got) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        loop.stop()
    assert len(set(receiver.ids())) == 2 and not receiver.rejected


def test_a_receiver_that_drips_its_answer_is_cut_off(
    app: Flask, client: FlaskClient
) -> None:
    """The timeout bounds the whole exchange, not each read."""
    import socket as sockets
    import threading
    import time

    server = sockets.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def drip() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b"X-Slow: y\r\n")
            except OSError:
                break
            time.sleep(0.2)
        conn.close()

    threading.Thread(target=drip, daemon=True).start()
    app.extensions["unitgate"].settings.webhook_timeout_seconds = 1.0
    acme = _unit(app, "acme")
    api = api_for(app, client, "acme")
    made = _add(api, acme, f"http://127.0.0.1:{server.getsockname()[1]}/")
    _emit(app, acme, 1)
    started = time.monotonic()
    try:
        assert delivery.deliver_due(app) == 0
    finally:
        stop.set()
        server.close()
    assert time.monotonic() - started < 5
    log = api.get(f"/units/{acme}/webhooks/{made['id']}/deliveries").get_json()
    assert log["items"][0]["log"][0]["status_code"] is None


def test_the_secret_is_never_kept_for_an_idempotent_replay(
    app: Flask, client: FlaskClient
) -> None:
    acme = _unit(app, "acme")
    api = api_for(app, client, "acme")
    key = {"Idempotency-Key": "create-hook-1"}
    body = {"url": "http://127.0.0.1:9/x"}
    first = api.post(f"/units/{acme}/webhooks", json=body, headers=key)
    assert first.status_code == 201 and first.get_json()["secret"]
    again = api.post(f"/units/{acme}/webhooks", json=body, headers=key)
    assert again.status_code == 409 and again.get_json()["code"] == "secret_not_replayed"
    assert first.get_json()["secret"] not in again.get_data(as_text=True)
    assert len(api.get(f"/units/{acme}/webhooks").get_json()["items"]) == 1


def test_finished_deliveries_are_pruned_after_thirty_days(
    app: Flask, client: FlaskClient, receiver: Receiver
) -> None:
    acme = _unit(app, "acme")
    api = api_for(app, client, "acme")
    made = _add(api, acme, receiver.url)
    receiver.secrets = [made["secret"]]
    receiver.start()
    _emit(app, acme, 2)
    assert delivery.deliver_due(app) == 2
    _emit(app, acme, 1)  # still pending: kept whatever its age
    assert delivery.prune(app, utcnow() + timedelta(days=29)) == 0
    assert delivery.prune(app, utcnow() + timedelta(days=31)) == 2
    left = api.get(f"/units/{acme}/webhooks/{made['id']}/deliveries").get_json()["items"]
    assert [d["status"] for d in left] == ["pending"]
