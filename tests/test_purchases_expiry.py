"""Approvals expire (issue 17): after ``IDP_APPROVAL_HOURS`` a pending order is
refused with ``approval_expired``, lazily when the merchant reads it and by the
sweep ``idp purchases expire``; its reservation never happened."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.cli import main
from idp.purchases import approvals
from idp.store.models import utcnow
from idp.units import registry as units
from tests.support.purchases import Shop, merchant, person, token

HOURS = 1.0


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"approval_hours": HOURS}


def test_pending_orders_expire(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
    res = app.test_cli_runner().invoke(main, [
        "budgets", "set", "--unit", "acme", "--role", "employee", "--period", "month",
        "--amount", "100.00", "--currency", "EUR", "--json"])
    assert res.exit_code == 0
    ann = person(app, "ann@acme.example", acme, ["employee"])
    person(app, "max@acme.example", acme, ["commercial_contact"])
    shop = Shop(client, token(app, client, merchant(app), ann, acme))
    polled = shop.buy("150.00").get_json()
    swept = shop.buy("120.00").get_json()
    assert polled["status"] == swept["status"] == "pending_approval"
    assert shop.get(polled["id"]).get_json()["status"] == "pending_approval"
    # an hour and a bit later (the approvals' clock moved, not a sleep: a loaded
    # machine never expires an order early)
    later = utcnow() + timedelta(hours=HOURS, minutes=1)
    monkeypatch.setattr(approvals, "utcnow", lambda: later)
    lazily = shop.get(polled["id"]).get_json()  # expired on read
    assert lazily["status"] == "refused" and lazily["reason"] == "approval_expired"
    res = app.test_cli_runner().invoke(main, ["purchases", "expire", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["expired"] == 1
    for pid in (polled["id"], swept["id"]):
        got = shop.get(pid).get_json()
        assert got["status"] == "refused" and got["reason"] == "approval_expired"
        assert got["approval"]["status"] == "expired"
    assert shop.buy("100.00").get_json()["status"] == "approved"  # nothing was reserved
