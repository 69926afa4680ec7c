"""An LDAP sync that changed accounts is announced to the unit's webhooks once per
run (``ldap.synced`` with counts), against a real slapd; a run that changed nothing
sends nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.webhooks import delivery
from tests.support.api import api_for
from tests.support.ldap_fixtures import USERS
from tests.support.webhook_receiver import Receiver, free_port
from tests.test_ldap_sync import run


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"webhook_allow_private": True}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver(free_port(), [])
    yield made.start()
    made.stop()


def test_a_sync_that_changed_accounts_is_announced_once(
    app: Flask, client: FlaskClient, directory_id: str, unit_id: str, receiver: Receiver
) -> None:
    api = api_for(app, client)
    made = api.post(f"/units/{unit_id}/webhooks", json={
        "url": receiver.url, "events": ["ldap.synced"]})
    assert made.status_code == 201, made.get_data(as_text=True)
    receiver.secrets = [made.get_json()["secret"]]

    first = run(app, directory_id)
    assert first.created == USERS - USERS // 100
    run(app, directory_id)  # nothing changed: no event
    assert delivery.deliver_due(app) == 1
    assert not receiver.rejected and len(receiver.got) == 1
    data = receiver.got[0].payload["data"]
    assert receiver.got[0].payload["type"] == "ldap.synced"
    assert data["directory_id"] == directory_id and data["unit_id"] == unit_id
    assert (data["created"], data["updated"], data["deactivated"]) == (first.created, 0, 0)
