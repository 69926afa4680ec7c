"""Authorisation on every endpoint of the administration API (issue 12, Tests;
SECURITY.md: "Admin rights are checked by one authorisation function on every call;
an admin of unit A sees unit B's resources as 404").

The endpoints are taken from the API's own registry, so an endpoint added later is
covered without touching this file:

* without credentials, every endpoint answers 401;
* unit A's admin client, aimed at unit B (or customer B), gets 404 everywhere;
* an employee of unit A (a real signed-in session) gets 403 in unit A on every
  endpoint needing a permission employees lack, and 404 in unit B;
* a staff processor assigned to B with only ``users.read`` gets 403 on B's endpoints
  needing anything else, and 404 on A's (not assigned).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.accounts import accesses
from idp.api.endpoint import REGISTRY, Endpoint
from idp.rights import catalogue, staff
from idp.store.db import db
from idp.store.models import Account
from idp.store.unit_of_work import atomic
from idp.units import registry as units
from tests.support.api import Api, api_for, assert_problem
from tests.support.login import csrf_token, sign_in_to_dashboard

PARAM = re.compile(r"{([a-z_]+)}")
NOBODY = "0" * 32  # an id that names nothing


def _endpoints() -> list[Endpoint]:
    """Every declared endpoint (the ``app`` fixture's app declared them all)."""
    assert len(REGISTRY) >= 4
    return list(REGISTRY)


def _path(ep: Endpoint, unit: str) -> str:
    def fill(match: re.Match[str]) -> str:
        return unit if match.group(1) in ("unit_id", "customer_id") else NOBODY

    return PARAM.sub(fill, ep.path)


def _scoped(ep: Endpoint) -> bool:
    names = PARAM.findall(ep.path)
    return "unit_id" in names or "customer_id" in names


def _person(app: Flask, email: str, unit_id: str, roles: list[str]) -> str:
    with app.app_context():
        account = Account(email=email, email_verified=True, given_name="A", family_name="B")
        db.session.add(account)
        db.session.commit()
        if roles:
            with atomic():
                accesses.create(account.id, unit_id, roles, "test", event=None)
        return account.id


@pytest.fixture
def two_units(app: Flask) -> tuple[str, str]:
    with app.app_context():
        return units.create("ACME", slug="acme").id, units.create("Globex", slug="globex").id


def _call(http: Any, ep: Endpoint, path: str, headers: dict[str, str] | None = None) -> Any:
    body = {} if ep.body is not None else None
    return http.open("/api/v1" + path, method=ep.method, json=body, headers=headers or {})


def test_every_endpoint_needs_credentials(client: FlaskClient, two_units: tuple[str, str]) -> None:
    for ep in _endpoints():
        resp = _call(client, ep, _path(ep, two_units[0]))
        assert resp.status_code == 401, (ep.method, ep.path, resp.status_code)
        assert_problem(resp, 401)


def test_a_units_admin_sees_every_resource_of_another_unit_as_404(
    app: Flask, client: FlaskClient, two_units: tuple[str, str]
) -> None:
    acme, globex = two_units
    api = api_for(app, client, acme)
    for ep in _endpoints():
        if not _scoped(ep):
            continue
        resp = api.call(ep.method, _path(ep, globex), json={} if ep.body else None)
        assert resp.status_code == 404, (ep.method, ep.path, resp.get_data(as_text=True))


def test_an_employee_gets_403_in_their_unit_and_404_elsewhere(
    app: Flask, client: FlaskClient, two_units: tuple[str, str]
) -> None:
    acme, globex = two_units
    _person(app, "emp@acme.example", acme, ["employee"])
    page = sign_in_to_dashboard(app, client, "emp@acme.example")
    headers = {"X-CSRF-Token": csrf_token(page.get_data(as_text=True))}
    held = catalogue.BUILT_IN["employee"]
    for ep in _endpoints():
        if not _scoped(ep) or ep.permission in held:
            continue
        resp = _call(client, ep, _path(ep, acme), headers)
        # declared permission: refused before anything is looked up; otherwise the
        # handler checks the resource's unit, and NOBODY's resources are not found
        expected = (403,) if ep.permission is not None else (403, 404)
        assert resp.status_code in expected, (ep.method, ep.path, resp.get_data(as_text=True))
        resp = _call(client, ep, _path(ep, globex), headers)
        assert resp.status_code == 404, (ep.method, ep.path, resp.get_data(as_text=True))


def test_a_processor_holds_only_what_they_were_given(
    app: Flask, client: FlaskClient, two_units: tuple[str, str]
) -> None:
    acme, globex = two_units
    _person(app, "pat@operator.example", acme, [])
    with app.app_context():
        staff.add("pat@operator.example")
        staff.assign("pat@operator.example", "globex", "processor", ["users.read"])
    page = sign_in_to_dashboard(app, client, "pat@operator.example")
    headers = {"X-CSRF-Token": csrf_token(page.get_data(as_text=True))}
    assert Api(client, None).get("/me").get_json()["kind"] == "staff"
    for ep in _endpoints():
        if not _scoped(ep):
            continue
        resp = _call(client, ep, _path(ep, acme), headers)
        assert resp.status_code == 404, (ep.method, ep.path, resp.get_data(as_text=True))
        if ep.permission is not None and ep.permission != "users.read":
            resp = _call(client, ep, _path(ep, globex), headers)
            assert resp.status_code == 403, (ep.method, ep.path, resp.get_data(as_text=True))
