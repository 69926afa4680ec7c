"""Impersonation is announced to the unit's webhooks (issue 13, items 2 and 5): the
start and the end arrive at a real receiver once each, verified with the
``standardwebhooks`` package, valid against the published schema, and without the
free-text reason."""

from __future__ import annotations

import json
from collections.abc import Iterator

import jsonschema
import pytest
from flask import Flask, testing

from idp.webhooks import delivery
from tests.support.api import api_for
from tests.support.login import CSRF_RE
from tests.support.smtp import SmtpSink
from tests.support.webhook_receiver import Receiver, free_port
from tests.test_impersonation import browser, start, world


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink) -> dict[str, object]:
    return {"smtp_url": smtp_server.url, "webhook_allow_private": True}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver(free_port(), [])
    yield made.start()
    made.stop()


def test_start_and_end_are_announced_once_without_the_reason(
    app: Flask, client: testing.FlaskClient, receiver: Receiver
) -> None:
    ids = world(app)
    api = api_for(app, client)
    made = api.post(f"/units/{ids['sales']}/webhooks", json={
        "url": receiver.url, "events": ["impersonation.started", "impersonation.ended"]})
    assert made.status_code == 201, made.get_data(as_text=True)
    receiver.secrets = [made.get_json()["secret"]]

    web, csrf = browser(app, ids["carl"])
    assert start(web, csrf, ids["sales"], ids["ann_access"]).status_code == 201
    page = web.get("/account").get_data(as_text=True)
    token = CSRF_RE.search(page)
    assert token is not None
    assert web.post("/account/impersonation/end",
                    data={"csrf_token": token.group(1)}).status_code == 303

    assert delivery.deliver_due(app) == 2
    assert not receiver.rejected and len(set(receiver.ids())) == 2
    payloads = {r.payload["type"]: r.payload for r in receiver.got}
    started, ended = payloads["impersonation.started"], payloads["impersonation.ended"]
    assert started["data"]["account_id"] == ids["ann"]
    assert started["data"]["actor_account_id"] == ids["carl"]
    assert started["data"]["access_id"] == ids["ann_access"]
    assert ended["data"]["how"] == "ended"
    assert ended["data"]["impersonation_id"] == started["data"]["impersonation_id"]
    assert "Ticket 4711" not in json.dumps(started)
    schema = api.get("/events/schema").get_json()["events"]
    for payload in (started, ended):
        jsonschema.validate(payload, schema[payload["type"]]["json_schema"])
