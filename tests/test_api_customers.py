"""Customers through the administration API (issue 12, item 3): create, read,
update, list, filter, page, block and delete, with the authorisation boundaries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from idp.accounts import accesses
from idp.release import claims
from idp.rights import Actor, may, staff
from idp.store.db import db
from idp.store.models import (
    Access,
    Account,
    AuditEvent,
    Consent,
    Grant,
    RefreshToken,
    Session,
    SignIn,
    Unit,
    utcnow,
)
from idp.store.unit_of_work import atomic
from idp.units import customers
from idp.units import registry as units
from tests.support import oidc
from tests.support.api import Api, api_for, assert_problem
from tests.support.login import CSRF_RE, sign_in_to_dashboard

ORG = "openid profile email org offline_access"


@pytest.fixture(autouse=True)
def _login_endpoint(app: Flask) -> None:
    oidc.ensure_login_endpoint(app)


def company(api: Api, name: str = "ACME GmbH", **extra: Any) -> dict[str, Any]:
    body = {"kind": "company", "name": name, **extra}
    resp = api.post("/customers", json=body)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return dict(resp.get_json())


def count(model: Any, *where: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def access_to(app: Flask, account_id: str, unit_id: str, roles: list[str]) -> str:
    with app.app_context():
        with atomic():
            row = accesses.create(account_id, unit_id, roles, "test", event=None)
        return row.id


def test_the_operator_creates_reads_and_updates_a_company_and_a_person(
    app: Flask, client: FlaskClient
) -> None:
    api = api_for(app, client)
    made = company(api, address={"street": "Hauptstr. 1", "postal_code": "10115",
                                 "city": "Berlin", "country": "de"}, vat_id="de 123.456.789")
    assert made["kind"] == "company" and made["slug"] == "acme-gmbh"
    assert made["address"]["country"] == "DE" and made["vat_id"] == "DE123456789"
    assert made["status"] == "active" and made["activity"] == "never"
    assert made["given_name"] is None
    got = api.get(f"/customers/{made['id']}").get_json()
    assert got == made
    changed = api.patch(f"/customers/{made['id']}", json={"name": "ACME AG", "vat_id": None})
    assert changed.status_code == 200
    assert changed.get_json()["name"] == "ACME AG" and changed.get_json()["vat_id"] is None

    person = api.post("/customers", json={
        "kind": "person", "given_name": "Erika", "family_name": "Mustermann"})
    assert person.status_code == 201
    pid = person.get_json()["id"]
    assert person.get_json()["name"] == "Erika Mustermann"
    assert person.get_json()["slug"] == "person-" + pid[:8]  # not their name
    assert person.get_json()["address"] is None
    renamed = api.patch(f"/customers/{pid}", json={"family_name": "Musterfrau"}).get_json()
    assert renamed["name"] == "Erika Musterfrau"
    with app.app_context():  # the audit log names fields, never the person's name
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("customer.%"))).all()
        assert [e.action for e in events] == ["customer.create", "customer.update",
                                              "customer.create", "customer.update"]
        assert all("Erika" not in str(e.details) + str(e.target) for e in events)
        assert events[-1].details["fields"] == ["family_name", "name"]
        assert events[-1].actor_kind == "client"


def test_kind_specific_fields_and_bad_input_are_422_and_write_nothing(
    app: Flask, client: FlaskClient
) -> None:
    api = api_for(app, client)
    cases = [
        ({"kind": "company", "name": "X", "given_name": "Y"}, "field_not_for_kind",
         "/body/given_name"),
        ({"kind": "person", "given_name": "A", "family_name": "B", "vat_id": "DE123"},
         "field_not_for_kind", "/body/vat_id"),
        ({"kind": "person", "given_name": "A", "family_name": "B", "name": "C"},
         "field_not_for_kind", "/body/name"),
        ({"kind": "company", "name": "X", "vat_id": "123456"}, "invalid_vat_id", "/body/vat_id"),
        ({"kind": "company", "name": "X", "address": {"country": "Germany"}}, "invalid_input",
         "/body/address/country"),
        ({"kind": "company", "name": "X", "address": {"planet": "Earth"}}, "invalid_input",
         "/body/address/planet"),
        ({"kind": "company"}, "invalid_name", "/body/name"),
        ({"kind": "company", "name": "   "}, "invalid_name", "/body/name"),
        ({"kind": "person", "given_name": "A"}, "invalid_family_name", "/body/family_name"),
        ({"kind": "robot", "name": "X"}, "invalid_input", "/body/kind"),
        ({"kind": "company", "name": "X", "colour": "red"}, "invalid_input", "/body/colour"),
        ({"kind": "company", "name": "X", "slug": "Not A Slug"}, "invalid_slug", "/body/slug"),
    ]
    for body, code, pointer in cases:
        problem = assert_problem(api.post("/customers", json=body), 422, code)
        assert problem["errors"][0]["pointer"] == pointer, (body, problem)
    assert_problem(api.post("/customers", data="{", content_type="application/json"), 400,
                   "malformed_json")
    assert_problem(api.post("/customers", data="x", content_type="text/plain"), 415)
    made = company(api, slug="acme")
    assert_problem(api.post("/customers", json={"kind": "company", "name": "A", "slug": "acme"}),
                   409, "slug_taken")
    assert_problem(api.patch(f"/customers/{made['id']}", json={"kind": "person"}), 422)
    assert_problem(api.patch(f"/customers/{made['id']}", json={"family_name": "X"}), 422,
                   "field_not_for_kind")
    assert_problem(api.patch(f"/customers/{made['id']}", json={"status": "sleeping"}), 422)
    with app.app_context():
        assert count(Unit) == 1
        assert db.session.get(Unit, made["id"]).name == "ACME GmbH"


def test_the_list_filters_and_pages_by_cursor(app: Flask, client: FlaskClient) -> None:
    api = api_for(app, client)
    ids = {}
    for name in ("Alpha", "Beta", "Gamma", "Delta", "Epsilon"):
        ids[name] = company(api, name, vat_id=f"DE{len(name)}00{ord(name[0])}")["id"]
    person = api.post("/customers", json={
        "kind": "person", "given_name": "Zoe", "family_name": "Z"}).get_json()
    ann = oidc.make_account(app, "ann@alpha.example")
    access_to(app, ann, ids["Alpha"], ["main_user"])
    access_to(app, ann, ids["Beta"], ["employee"])
    with app.app_context():
        sub = units.create("Beta Sales", parent=ids["Beta"]).id
    access_to(app, ann, sub, ["employee"])
    with app.app_context(), atomic():
        accesses.record_signin(ann, ids["Alpha"], utcnow() - timedelta(days=3))
        accesses.record_signin(ann, sub, utcnow() - timedelta(days=200))  # a sub-unit counts

    seen, cursor = [], None
    while True:
        query: dict[str, Any] = {"limit": 2, "with_total": "true"}
        if cursor:
            query["cursor"] = cursor
        page = api.get("/customers", query_string=query).get_json()
        assert page["total"] == 6
        seen += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["Alpha", "Beta", "Delta", "Epsilon", "Gamma", "Zoe Z"]

    def names(**query: Any) -> list[str]:
        resp = api.get("/customers", query_string=query)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return [c["name"] for c in resp.get_json()["items"]]

    assert names(kind="person") == ["Zoe Z"]
    assert names(activity="active") == ["Alpha"]
    assert names(activity="dormant") == ["Beta"]
    assert "Alpha" not in names(activity="never") and len(names(activity="never")) == 4
    assert names(q="ELT") == ["Delta"]
    assert names(q="de5006") == ["Alpha", "Delta"]  # the VAT id
    assert names(q="%") == []
    api.patch(f"/customers/{ids['Gamma']}", json={"status": "blocked"})
    assert names(status="blocked") == ["Gamma"]
    assert names(created_after=(utcnow() + timedelta(hours=1)).isoformat()) == []
    assert len(names(created_before=(utcnow() + timedelta(hours=1)).isoformat())) == 6
    got = api.get(f"/customers/{ids['Beta']}").get_json()
    assert got["activity"] == "dormant" and got["last_signin_at"]
    assert api.get(f"/customers/{person['id']}").get_json()["activity"] == "never"
    assert_problem(api.get("/customers", query_string={"activity": "sometimes"}), 422)
    assert_problem(api.get("/customers", query_string={"limit": 201}), 422)
    naive = assert_problem(api.get("/customers", query_string={
        "created_after": "2026-01-01T00:00:00"}), 422)
    assert naive["errors"][0]["pointer"] == "/query/created_after"
    assert_problem(api.get("/customers", query_string={"cursor": "bm9wZQ"}), 400,
                   "invalid_cursor")
    # a sub-unit is not a customer
    assert_problem(api.get(f"/customers/{sub}"), 404)


def test_a_units_client_sees_only_its_customer_and_cannot_create_block_or_delete(
    app: Flask, client: FlaskClient
) -> None:
    operator = api_for(app, client)
    acme = company(operator, "ACME")
    globex = company(operator, "Globex")
    api = api_for(app, client, acme["id"])
    assert [c["id"] for c in api.get("/customers").get_json()["items"]] == [acme["id"]]
    assert api.get(f"/customers/{acme['id']}").status_code == 200
    assert_problem(api.get(f"/customers/{globex['id']}"), 404, "not_found")
    assert_problem(api.patch(f"/customers/{globex['id']}", json={"name": "Mine"}), 404)
    assert_problem(api.delete(f"/customers/{globex['id']}", json={"confirm": "Globex"}), 404)
    assert_problem(api.post("/customers", json={"kind": "company", "name": "New"}), 403,
                   "forbidden")
    # its own customer: data yes, status and deletion no
    assert api.patch(f"/customers/{acme['id']}", json={"name": "ACME 2"}).status_code == 200
    assert_problem(api.patch(f"/customers/{acme['id']}", json={"status": "blocked"}), 403)
    assert_problem(api.delete(f"/customers/{acme['id']}", json={"confirm": "ACME 2"}), 403)
    with app.app_context():
        assert count(Unit) == 2
        assert db.session.get(Unit, acme["id"]).status == "active"


def _staff_session(app: Flask, web: FlaskClient, email: str) -> dict[str, str]:
    page = sign_in_to_dashboard(app, web, email)
    token = CSRF_RE.search(page.get_data(as_text=True))
    assert token is not None
    return {"X-CSRF-Token": token.group(1)}


def test_staff_see_only_their_assigned_customers(app: Flask, client: FlaskClient) -> None:
    operator = api_for(app, client)
    acme = company(operator, "ACME")
    globex = company(operator, "Globex")
    initech = company(operator, "Initech")
    oidc.make_account(app, "sam@operator.example")
    with app.app_context():
        staff.add("sam@operator.example")
        staff.assign("sam@operator.example", acme["id"], "administrator")
        staff.assign("sam@operator.example", initech["id"], "processor", ["documents.read"])
    web = app.test_client()
    csrf = _staff_session(app, web, "sam@operator.example")
    listed = web.get("/api/v1/customers").get_json()
    assert [c["name"] for c in listed["items"]] == ["ACME"] and listed["total"] == 1
    assert_problem(web.get(f"/api/v1/customers/{globex['id']}"), 404)
    assert_problem(web.get(f"/api/v1/customers/{initech['id']}"), 403)  # no users.read
    # writes by session need the CSRF header
    assert_problem(web.patch(f"/api/v1/customers/{acme['id']}", json={"status": "blocked"}),
                   403, "csrf_failed")
    resp = web.patch(f"/api/v1/customers/{acme['id']}", json={"status": "blocked"},
                     headers=csrf)
    assert resp.status_code == 200 and resp.get_json()["status"] == "blocked"
    assert_problem(web.post("/api/v1/customers", json={"kind": "company", "name": "N"},
                            headers=csrf), 403)


def test_blocking_a_customer_stops_what_its_accesses_give_and_its_tokens(
    app: Flask, client: FlaskClient
) -> None:
    operator = api_for(app, client)
    acme = company(operator, "ACME")
    other = company(operator, "Other")
    ann = oidc.make_account(app, "ann@acme.example")
    access_to(app, ann, acme["id"], ["main_user"])
    access_to(app, ann, other["id"], ["employee"])
    with app.app_context():
        sub = units.create("ACME Sales", parent=acme["id"]).id
    access_to(app, ann, sub, ["employee"])
    rp = oidc.register(app, scope=ORG, grant_types=["authorization_code", "refresh_token"])
    browser = app.test_client()
    tokens = oidc.exchange(browser, rp, oidc.sign_in(
        app, browser, rp, ann, unit_id=acme["id"], scope=ORG)).get_json()
    others = oidc.exchange(browser, rp, oidc.sign_in(
        app, browser, rp, ann, unit_id=other["id"], scope=ORG)).get_json()
    assert oidc.userinfo(browser, tokens["access_token"]).get_json()["org_id"] == acme["id"]

    blocked = operator.patch(f"/customers/{acme['id']}", json={"status": "blocked"})
    assert blocked.status_code == 200 and blocked.get_json()["status"] == "blocked"
    assert oidc.userinfo(browser, tokens["access_token"]).status_code == 401
    assert oidc.refresh(browser, rp, tokens["refresh_token"]).status_code == 400
    assert oidc.userinfo(browser, others["access_token"]).status_code == 200
    with app.app_context():
        main_user = Actor.account(ann)
        assert not may(main_user, "users.read", acme["id"])
        assert not may(main_user, "users.read", sub)  # sub-units are blocked with it
        assert may(main_user, "orders.create", other["id"])
        assert claims.access_for(ann, acme["id"]) is None
        assert claims.access_for(ann, sub) is None
        assert [a.unit_id for a in accesses.of_account(ann) if a.grants()] == [other["id"]]
        # a sub-unit created while blocked is blocked too
        assert units.create("ACME Later", parent=acme["id"]).status == "blocked"
        # the accesses keep their own status
        assert {a.status for a in accesses.of_account(ann)} == {"active"}
    assert_problem(api_for(app, client, acme["id"]).get("/customers/" + other["id"]), 404)

    operator.patch(f"/customers/{acme['id']}", json={"status": "active"})
    with app.app_context():
        assert may(Actor.account(ann), "users.read", sub)
        assert claims.access_for(ann, acme["id"]) is not None


def test_deleting_a_customer_removes_everything_it_has_but_not_the_people(
    app: Flask, client: FlaskClient
) -> None:
    operator = api_for(app, client)
    acme = company(operator, "ACME")
    other = company(operator, "Other")
    ann = oidc.make_account(app, "ann@acme.example")
    bob = oidc.make_account(app, "bob@acme.example")
    access_to(app, ann, acme["id"], ["main_user"])
    access_to(app, ann, other["id"], ["employee"])
    with app.app_context():
        sub = units.create("ACME Sales", parent=acme["id"]).id
        units.add_field(sub, "desk")
    access_to(app, bob, sub, ["employee"])
    acme_client = api_for(app, client, acme["id"])
    rp = oidc.register(app, scope=ORG, grant_types=["authorization_code", "refresh_token"])
    browser = app.test_client()
    acme_tokens = oidc.exchange(browser, rp, oidc.sign_in(
        app, browser, rp, bob, unit_id=sub, scope=ORG)).get_json()
    other_tokens = oidc.exchange(browser, rp, oidc.sign_in(
        app, browser, rp, ann, unit_id=other["id"], scope=ORG)).get_json()
    oidc.start_session(app, browser, bob)
    with app.app_context():
        assert count(SignIn, SignIn.unit_id == sub) == 1
        grant = db.session.scalars(select(Grant).where(Grant.unit_id == sub)).one()
        db.session.add(Session(id_hash="h" * 64, account_id=bob,
                               expires_at=utcnow() + timedelta(hours=1)))
        grant.session_id = "h" * 64
        db.session.commit()

    path = f"/customers/{acme['id']}"
    assert_problem(operator.delete(path, json={}), 422, "confirmation_required")
    bad = assert_problem(operator.delete(path, json={"confirm": "acme"}), 422,
                         "confirmation_required")
    assert bad["errors"][0]["pointer"] == "/body/confirm"
    assert_problem(operator.delete(path), 415)
    assert operator.get(path).status_code == 200

    resp = operator.delete(path, json={"confirm": "ACME"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["removed"] == {
        "units": 2, "accesses": 2, "grants": 1, "sign_ins": 1, "sessions": 1,
        "admin_clients": 1,
    }
    assert_problem(operator.get(path), 404)
    assert_problem(operator.delete(path, json={"confirm": "ACME"}), 404)
    # the tokens issued for the customer's units are refused; others are not
    assert oidc.userinfo(browser, acme_tokens["access_token"]).status_code == 401
    assert oidc.refresh(browser, rp, acme_tokens["refresh_token"]).status_code == 400
    intro = browser.post("/introspect", data={"token": acme_tokens["access_token"]},
                         headers=rp.basic())
    assert intro.get_json() == {"active": False}
    assert oidc.userinfo(browser, other_tokens["access_token"]).status_code == 200
    assert_problem(acme_client.get("/me"), 401, "invalid_token")
    with app.app_context():
        assert count(Unit, Unit.id.in_([acme["id"], sub])) == 0
        assert count(Access, Access.unit_id.in_([acme["id"], sub])) == 0
        assert count(SignIn, SignIn.unit_id == sub) == 0
        assert count(Grant, Grant.unit_id == sub) == 0
        assert count(RefreshToken) >= 1  # the other customer's
        assert count(Session, Session.id_hash == "h" * 64) == 0
        assert count(Consent, Consent.account_id == bob) == 1  # the person's, kept
        # the people stay, with their other accesses
        assert count(Account, Account.id.in_([ann, bob])) == 2
        assert [a.unit_id for a in accesses.of_account(ann)] == [other["id"]]
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "customer.delete")).one()
        assert event.target == acme["id"]
        assert "ACME" not in str(event.details) and "@" not in str(event.details)
        assert event.details["accesses"] == 2


def test_customers_service_refuses_sub_units_and_unknown_ids(app: Flask) -> None:
    with app.app_context():
        top = customers.create("company", {"name": "Top"})
        sub = units.create("Sub", parent=top.id)
        for ref in (sub.id, "nope", "x" * 40):
            with pytest.raises(customers.CustomerError) as caught:
                customers.get(ref)
            assert caught.value.code == "not_found"
        assert customers.validate_vat_id(" at-u12 345 678 ") == "ATU12345678"
        # a sub-unit moved into another customer takes its status, with its own sub-units
        other = customers.create("company", {"name": "Other"})
        customers.update(top.id, {"status": "blocked"})
        below = units.create("Below", parent=sub.id)
        assert (units.get(sub.id).status, below.status) == ("blocked", "blocked")
        units.update(sub.id, parent=other.id)
        assert {units.get(sub.id).status, units.get(below.id).status} == {"active"}
        for bad in ("D1234", "DE1", "DE12345678901234", "DE12_34"):
            with pytest.raises(customers.CustomerError):
                customers.validate_vat_id(bad)


def test_odd_input_on_every_customer_and_staff_endpoint_is_a_4xx_problem(
    app: Flask, client: FlaskClient
) -> None:
    api = api_for(app, client)
    cid = company(api, "ACME")["id"]
    sam = oidc.make_account(app, "sam@operator.example")
    with app.app_context():
        staff.add("sam@operator.example")
    odd_bodies: list[Any] = [None, [], "x", 1, {"": None}, {"kind": None}, {"name": ["A"]},
                             {"address": "Berlin"}, {"address": {"city": 5}},
                             {"accesses": [None]}, {"staff": "x" * 300}, {"kind": "processor",
                             "permissions": "users.read"}, {"confirm": 7}, {"email": ""},
                             {"email": "a\u0000@x.example"}, {"accesses": ["a\u0000"]},
                             {"staff": ["\u0000"]}, {"name": "A\u0000"}, {"confirm": "\u0000"},
                             {"kind": "company", "name": "\u0000"}, {"vat_id": "DE\u00001"}]
    writes = [
        ("POST", "/customers"), ("PATCH", f"/customers/{cid}"), ("DELETE", f"/customers/{cid}"),
        ("POST", "/staff"), ("PUT", f"/customers/{cid}/staff/{sam}"),
        ("POST", f"/customers/{cid}/authorisations/remove"),
    ]
    with app.app_context():
        before = count(AuditEvent)
    for method, path in writes:
        for body in odd_bodies:
            resp = api.call(method, path, json=body)
            assert 400 <= resp.status_code < 500, (method, path, body, resp.get_data(as_text=True))
            assert resp.mimetype == "application/problem+json"
    odd_ids = ["x", "0" * 32, "%00", "a" * 64, "a" * 65, "ACME"]
    for ref in odd_ids:
        for method, path in [("GET", f"/customers/{ref}"), ("GET", f"/staff/{ref}"),
                             ("GET", f"/customers/{ref}/authorisations"),
                             ("DELETE", f"/staff/{ref}"),
                             ("DELETE", f"/customers/{cid}/staff/{ref}"),
                             ("DELETE", f"/customers/{ref}/staff/{sam}")]:
            resp = api.call(method, path)
            assert 400 <= resp.status_code < 500, (method, path, resp.get_data(as_text=True))
    for query in ({"q": ""}, {"kind": "x"}, {"created_before": "yesterday"}, {"limit": "-1"},
                  {"created_before": "0.5"}, {"created_after": "2026-01-01"},
                  {"cursor": "W10"}, {"cursor": "WzEsMl0"}, {"status": "gone"},
                  {"q": "a\u0000"}, {"cursor": "WyJcdTAwMDAiLCJ4Il0"}):
        resp = api.get("/customers", query_string=query)
        assert 400 <= resp.status_code < 500, (query, resp.get_data(as_text=True))
        resp = api.get(f"/customers/{cid}/authorisations", query_string=query)
        assert 400 <= resp.status_code < 500, (query, resp.get_data(as_text=True))
    with app.app_context():
        assert count(AuditEvent) == before  # nothing written
        assert count(Unit) == 1
