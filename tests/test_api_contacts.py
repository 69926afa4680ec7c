"""Adding a contact as a new person (issue 12, item 4) through the administration
API: the account and the access in one transaction, with or without platform
access; an address that has an account is a 409; the boundaries (another unit's
admin 404, an employee 403); bad input is a problem+json and writes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from idp.accounts import accesses
from idp.rights import Actor, may
from idp.store.db import db
from idp.store.models import Access, AccessInvitation, Account, AuditEvent, OutboxMessage
from idp.store.unit_of_work import atomic
from idp.units import registry as units
from tests.support.api import api_for, assert_problem
from tests.support.login import (
    add_protocol_stand_in,
    code_from_outbox,
    path_of,
    start,
    submit_code,
    submit_email,
)
from tests.test_invitations import mails_to


def _units(app: Flask) -> tuple[str, str]:
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
        globex = units.create("Globex", slug="globex").id
        return acme, globex


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": "otto@acme.example", "given_name": "Otto", "family_name": "Ort",
        "mobile": "+4930123456", "roles": ["operational_contact"], "platform_access": True,
    }
    body.update(changes)
    return body


def _counts(app: Flask) -> tuple[int, ...]:
    with app.app_context():
        return tuple(
            db.session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Account, Access, AccessInvitation, OutboxMessage)
        )


def test_the_openapi_document_describes_the_contact_endpoints(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    op = doc["paths"]["/units/{unit_id}/contacts"]["post"]
    assert op["x-permission"] == "users.manage" and "409" in op["responses"]
    methods = doc["paths"]["/units/{unit_id}/accesses/{access_id}/invitation"]
    assert {"get", "post", "delete"} <= set(methods)


def test_with_platform_access_the_access_is_invited_and_an_invitation_goes_out(
    app: Flask, client: FlaskClient
) -> None:
    acme, _ = _units(app)
    api = api_for(app, client, "acme")
    resp = api.post(f"/units/{acme}/contacts", json=_body(mobile=None))
    assert resp.status_code == 201
    made = resp.get_json()
    assert made["status"] == "invited" and made["platform_access"] is True
    assert made["roles"] == ["operational_contact"] and made["details_sent_at"]
    assert made["invitation"]["status"] == "pending"
    assert made["invitation"]["sms_required"] is False
    with app.app_context():
        account = db.session.get(Account, made["account_id"])
        assert account is not None and account.email_verified is False
        assert account.name == "Otto Ort"
        row = accesses.find(account.id, acme)
        assert row is not None and not row.grants()  # invited: nothing yet
        actions = set(db.session.scalars(select(AuditEvent.action)))
        assert {"account.create", "access.created", "invitation.sent"} <= actions
    [text] = mails_to(app, "otto@acme.example")
    assert "ACME invites you" in text and "/invitation/" in text


def test_without_platform_access_the_contact_only_gets_notifications(
    app: Flask, client: FlaskClient
) -> None:
    add_protocol_stand_in(app)
    acme, _ = _units(app)
    api = api_for(app, client, "acme")
    resp = api.post(f"/units/{acme}/contacts", json=_body(
        platform_access=False, notifications=["orders.approved", "invoices.new"],
        send_welcome=True, language="de", roles=["commercial_contact"]))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    made = resp.get_json()
    assert made["status"] == "active" and made["platform_access"] is False
    assert made["invitation"] is None and made["details_sent_at"]
    assert made["notifications"] == ["invoices.new", "orders.approved"]
    [text] = mails_to(app, "otto@acme.example")
    assert "ACME" in text and "Kontakt" in text  # the German welcome
    path = f"/units/{acme}/accesses/{made['access_id']}/invitation"
    assert_problem(api.post(path), 409, "not_invited")
    assert_problem(api.get(path), 404, "not_found")
    with app.app_context():
        assert not may(Actor.account(made["account_id"]), "users.read", acme)

    # signing in with an e-mail code works, but not through the unit: no org, no unit
    web = app.test_client()
    login = start(web, scope="openid org")
    submit_email(web, login, "otto@acme.example")
    resp = submit_code(web, login, code_from_outbox(app, "otto@acme.example"))
    while resp.status_code == 303 and "/_test/resume/" not in resp.headers["Location"]:
        location = path_of(resp)
        if location.endswith("/consent"):
            from tests.support.login import csrf_token

            page = web.get(location)
            resp = web.post(location, data={
                "csrf_token": csrf_token(page.get_data(as_text=True)), "decision": "allow"})
        else:
            resp = web.get(location)
    final = web.get(resp.headers["Location"]).get_json()
    assert final["account_id"] == made["account_id"] and final["unit_id"] is None


def test_without_send_welcome_no_mail_is_sent(app: Flask, client: FlaskClient) -> None:
    acme, _ = _units(app)
    api = api_for(app, client, "acme")
    made = api.post(f"/units/{acme}/contacts", json=_body(platform_access=False)).get_json()
    assert made["details_sent_at"] is None
    assert mails_to(app, "otto@acme.example") == []


def test_an_address_with_an_account_is_a_409_to_link_instead(
    app: Flask, client: FlaskClient
) -> None:
    acme, _ = _units(app)
    with app.app_context():
        db.session.add(Account(email="taken@globex.example", email_verified=True,
                               given_name="T", family_name="K"))
        db.session.commit()
    api = api_for(app, client, "acme")
    before = _counts(app)
    body = assert_problem(
        api.post(f"/units/{acme}/contacts", json=_body(email=" Taken@Globex.example ")),
        409, "person_exists")
    assert "/accesses" in body["detail"] and "Globex" not in body["detail"]
    assert _counts(app) == before
    with app.app_context():
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "contact.person_exists")).one()
        assert event.unit_id == acme and "taken" not in str(event.details)


def test_boundaries_another_units_admin_gets_404_an_employee_403(
    app: Flask, client: FlaskClient
) -> None:
    acme, globex = _units(app)
    api = api_for(app, client, "acme")
    assert_problem(api.post(f"/units/{globex}/contacts", json=_body()), 404, "not_found")
    made = api.post(f"/units/{acme}/contacts", json=_body()).get_json()
    globex_api = api_for(app, client, "globex")
    path = f"/units/{acme}/accesses/{made['access_id']}/invitation"
    for method in ("GET", "POST", "DELETE"):
        assert_problem(globex_api.call(method, path), 404, "not_found")
    # the access id under another unit's path is no access
    assert_problem(globex_api.get(
        f"/units/{globex}/accesses/{made['access_id']}/invitation"), 404, "not_found")

    from tests.support.login import sign_in_to_dashboard

    with app.app_context():
        eve = Account(email="eve@acme.example", email_verified=True,
                      given_name="Eve", family_name="E")
        db.session.add(eve)
        db.session.commit()
        with atomic():
            accesses.create(eve.id, acme, ["employee"], "test", event=None)
    web = app.test_client()
    sign_in_to_dashboard(app, web, "eve@acme.example")
    assert_problem(web.get(f"/api/v1{path}"), 403, "forbidden")
    assert_problem(web.post(f"/api/v1/units/{acme}/contacts", json=_body(email="x@acme.example"),
                            headers={"X-CSRF-Token": "nope"}), 403)


@pytest.mark.parametrize(("changes", "status", "pointer"), [
    ({"email": "not-an-address"}, 422, "/body/email"),
    ({"mobile": "0151 2345678"}, 422, "/body/mobile"),
    ({"mobile": "+12"}, 422, "/body/mobile"),
    ({"roles": ["emperor"]}, 422, "/body/roles"),
    ({"given_name": ""}, 422, "/body/given_name"),
    ({"given_name": "   "}, 422, "/body/given_name"),
    ({"platform_access": "maybe"}, 422, "/body/platform_access"),
    ({"language": "fr"}, 422, "/body/language"),
    ({"colour": "red"}, 422, "/body/colour"),
    ({"platform_access": None}, 422, "/body/platform_access"),
    ({"family_name": "Ort\x00"}, 422, "/body/family_name"),
    ({"notifications": ["x" * 101]}, 422, "/body/notifications/0"),
    ({"roles": ["r" * 65]}, 422, "/body/roles/0"),
])
def test_bad_input_is_a_problem_and_writes_nothing(
    app: Flask, client: FlaskClient, changes: dict[str, Any], status: int, pointer: str
) -> None:
    acme, _ = _units(app)
    api = api_for(app, client, "acme")
    before = _counts(app)
    body = assert_problem(api.post(f"/units/{acme}/contacts", json=_body(**changes)), status)
    assert any(e["pointer"] == pointer for e in body.get("errors") or []), body
    assert _counts(app) == before


def test_malformed_and_non_json_bodies_are_refused(app: Flask, client: FlaskClient) -> None:
    acme, _ = _units(app)
    api = api_for(app, client, "acme")
    assert_problem(api.call("POST", f"/units/{acme}/contacts", data="{",
                            content_type="application/json"), 400, "malformed_json")
    assert_problem(api.call("POST", f"/units/{acme}/contacts", data="email=x",
                            content_type="application/x-www-form-urlencoded"), 415)
    missing = _body()
    del missing["platform_access"]
    assert_problem(api.post(f"/units/{acme}/contacts", json=missing), 422)


def test_a_failure_mid_way_leaves_nothing_half_written(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme, _ = _units(app)
    api = api_for(app, client, "acme")
    before = _counts(app)

    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("the SMS outbox is broken")

    monkeypatch.setattr("idp.accounts.invites.enqueue_sms", broken)
    resp = api.post(f"/units/{acme}/contacts", json=_body())
    assert resp.status_code == 500
    assert resp.mimetype == "application/problem+json"
    assert _counts(app) == before


def test_an_idempotency_key_creates_the_contact_once(app: Flask, client: FlaskClient) -> None:
    acme, _ = _units(app)
    api = api_for(app, client, "acme")
    headers = {"Idempotency-Key": "contact-otto-1"}
    first = api.post(f"/units/{acme}/contacts", json=_body(), headers=headers)
    again = api.post(f"/units/{acme}/contacts", json=_body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert first.get_json() == again.get_json()
    # without the key, the second creation is a conflict, not a second account
    assert_problem(api.post(f"/units/{acme}/contacts", json=_body()), 409, "person_exists")
