"""Accesses over the administration API (issue 12, item 4): link an existing person
(no second account), change roles, permission groups, platform access and
notifications, suspend, reactivate, remove, the last main user, search, and the
boundaries (another unit's admin, an employee, a holder of users.read only)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from idp.accounts import accesses
from idp.release import claims
from idp.rights import groups
from idp.store.db import db
from idp.store.models import Access, Account, AuditEvent
from idp.store.unit_of_work import atomic
from idp.units import registry as units
from tests.support.api import Api, api_for, assert_problem
from tests.support.login import csrf_token, sign_in_to_dashboard


@dataclass
class World:
    acme: str
    sales: str
    globex: str
    boss: str  # main user of ACME
    bob: str  # employee of Globex (a person ACME's admin must not find)
    carl: str  # employee of ACME Sales
    access_boss: str


def _account(email: str, given: str, family: str) -> str:
    row = Account(email=email, email_verified=True, given_name=given, family_name=family)
    db.session.add(row)
    db.session.commit()
    return row.id


@pytest.fixture
def world(app: Flask) -> World:
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
        sales = units.create("ACME Sales", parent="acme", slug="acme-sales").id
        globex = units.create("Globex", slug="globex").id
        boss = _account("boss@acme.example", "Bea", "Boss")
        bob = _account("bob@globex.example", "Bob", "Builder")
        carl = _account("carl@acme.example", "Carl", "Clerk")
        with atomic():
            row = accesses.create(boss, acme, ["main_user"], "test", event=None)
            accesses.create(bob, globex, ["employee"], "test", event=None)
            accesses.create(carl, sales, ["employee"], "test", event=None)
        return World(acme, sales, globex, boss, bob, carl, row.id)


def _count(app: Flask, model: type) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def test_link_an_existing_person_by_email_gives_no_second_account(
    app: Flask, client: FlaskClient, world: World
) -> None:
    api = api_for(app, client, "acme")
    before = _count(app, Account)
    resp = api.post(f"/units/{world.acme}/accesses", json={
        "email": "Carl@ACME.example", "roles": ["operational_contact"],
        "permission_groups": [], "platform_access": True,
    })
    assert resp.status_code == 201, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["account_id"] == world.carl and body["unit_id"] == world.acme
    assert body["roles"] == ["operational_contact"] and body["status"] == "active"
    assert body["notifications_default"] is True
    assert "approval.requested" in body["notifications"]  # the workflow defaults
    assert _count(app, Account) == before
    again = api.post(f"/units/{world.acme}/accesses", json={"account_id": world.carl})
    assert_problem(again, 409, "access_exists")
    got = api.get(f"/units/{world.acme}/accesses/{body['id']}").get_json()
    assert got == body


def test_linking_someone_you_cannot_see_says_the_same_as_nobody(
    app: Flask, client: FlaskClient, world: World
) -> None:
    api = api_for(app, client, "acme")
    stranger = assert_problem(
        api.post(f"/units/{world.acme}/accesses", json={"email": "bob@globex.example"}),
        422, "no_such_person")
    nobody = assert_problem(
        api.post(f"/units/{world.acme}/accesses", json={"email": "zed@nowhere.example"}),
        422, "no_such_person")
    assert stranger["detail"] == nobody["detail"]
    assert_problem(api.post(f"/units/{world.acme}/accesses", json={"account_id": world.bob}),
                   422, "no_such_person")
    # the operator may link anyone
    operator = api_for(app, client)
    resp = operator.post(f"/units/{world.acme}/accesses", json={"email": "bob@globex.example"})
    assert resp.status_code == 201


def test_search_finds_only_people_of_units_the_caller_administers(
    app: Flask, client: FlaskClient, world: World
) -> None:
    api = api_for(app, client, "acme")
    found = api.get(f"/units/{world.acme}/people/search", query_string={"q": "ca"}).get_json()
    assert [p["email"] for p in found["items"]] == ["carl@acme.example"]
    by_name = api.get(f"/units/{world.acme}/people/search", query_string={"q": "Bui"})
    assert by_name.get_json()["items"] == []  # Bob Builder is Globex's
    assert_problem(api.get(f"/units/{world.acme}/people/search", query_string={"q": "c"}), 422)
    assert_problem(api.get(f"/units/{world.acme}/people/search",
                           query_string={"q": "ca", "limit": 50}), 422)


def test_change_roles_groups_platform_access_and_notifications(
    app: Flask, client: FlaskClient, world: World
) -> None:
    with app.app_context():
        groups.set_group("acme", "buyers", ["orders.create"])
    api = api_for(app, client, "acme")
    made = api.post(f"/units/{world.acme}/accesses", json={"account_id": world.carl}).get_json()
    path = f"/units/{world.acme}/accesses/{made['id']}"
    resp = api.patch(path, json={"roles": ["commercial_contact"],
                                 "permission_groups": ["buyers"]})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["roles"] == ["commercial_contact"] and body["permission_groups"] == ["buyers"]
    assert "invoice.issued" in body["notifications"]  # the invoice recipient
    body = api.patch(path, json={"notifications": ["budget.alert"]}).get_json()
    assert body["notifications"] == ["budget.alert"] and not body["notifications_default"]
    bad = assert_problem(api.patch(path, json={"notifications": ["spam"]}), 422,
                         "unknown_event")
    assert bad["errors"][0]["pointer"] == "/body/notifications"
    assert_problem(api.patch(path, json={"permission_groups": ["nope"]}), 422, "invalid_group")
    assert_problem(api.patch(path, json={"roles": ["king"]}), 422, "invalid_input")
    assert_problem(api.patch(path, json={"colour": "red"}), 422, "invalid_input")
    body = api.patch(path, json={"notifications": None}).get_json()
    assert body["notifications_default"] is True
    body = api.patch(path, json={"platform_access": False}).get_json()
    assert body["platform_access"] is False
    with app.app_context():
        assert claims.access_for(world.carl, world.acme) is None
    events = api.get("/notification-events").get_json()
    assert {"name": "invoice.issued", "description": events[5]["description"],
            "default_for": ["commercial_contact"]} in events


def test_suspend_reactivate_remove_and_the_claims_per_unit(
    app: Flask, client: FlaskClient, world: World
) -> None:
    api = api_for(app, client, "acme")
    made = api.post(f"/units/{world.acme}/accesses", json={"account_id": world.carl}).get_json()
    path = f"/units/{world.acme}/accesses/{made['id']}"
    assert api.post(path + "/suspend").get_json()["status"] == "suspended"
    with app.app_context():
        assert claims.access_for(world.carl, world.acme) is None
        assert claims.access_for(world.carl, world.sales) is not None  # elsewhere: still
    assert api.post(path + "/suspend").get_json()["status"] == "suspended"  # unchanged
    assert api.post(path + "/reactivate").get_json()["status"] == "active"
    with app.app_context():
        assert claims.access_for(world.carl, world.acme) is not None
    assert api.delete(path).status_code == 204
    assert_problem(api.get(path), 404, "not_found")
    with app.app_context():
        assert db.session.get(Account, world.carl) is not None
        actions = set(db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.target == world.carl)))
    assert {"access.linked", "access.suspended", "access.resumed", "access.removed"} <= actions


def test_the_last_main_user_is_never_suspended_removed_or_demoted(
    app: Flask, client: FlaskClient, world: World
) -> None:
    api = api_for(app, client, "acme")
    path = f"/units/{world.acme}/accesses/{world.access_boss}"
    assert_problem(api.post(path + "/suspend"), 422, "last_main_user")
    assert_problem(api.delete(path), 422, "last_main_user")
    assert_problem(api.patch(path, json={"roles": ["employee"]}), 422, "last_main_user")
    assert_problem(api.patch(path, json={"platform_access": False}), 422, "last_main_user")
    with app.app_context():
        assert accesses.is_last_main_user(world.boss, world.acme)
        row = db.session.get(Access, world.access_boss)
        assert row is not None and row.status == "active" and row.roles == ["main_user"]
    second = api.post(f"/units/{world.acme}/accesses",
                      json={"account_id": world.carl, "roles": ["main_user"]})
    assert second.status_code == 201
    with app.app_context():
        assert not accesses.is_last_main_user(world.boss, world.acme)
        assert not accesses.is_last_main_user(world.carl, world.sales)  # a sub-unit
    assert api.post(path + "/suspend").get_json()["status"] == "suspended"
    other = f"/units/{world.acme}/accesses/{second.get_json()['id']}"
    assert_problem(api.delete(other), 422, "last_main_user")


def test_a_sub_units_access_lives_under_the_sub_unit_and_others_see_404(
    app: Flask, client: FlaskClient, world: World
) -> None:
    with app.app_context():
        carl_sales = accesses.find(world.carl, world.sales)
        assert carl_sales is not None
        access_id = carl_sales.id
    acme = api_for(app, client, "acme")
    assert acme.get(f"/units/{world.sales}/accesses/{access_id}").status_code == 200
    assert_problem(acme.get(f"/units/{world.acme}/accesses/{access_id}"), 404)
    globex = api_for(app, client, "globex")
    for method, suffix in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/suspend")):
        resp = globex.call(method, f"/units/{world.sales}/accesses/{access_id}{suffix}",
                           json={} if method == "PATCH" else None)
        assert_problem(resp, 404, "not_found")
        resp = globex.call(method, f"/units/{world.globex}/accesses/{access_id}{suffix}",
                           json={} if method == "PATCH" else None)
        assert_problem(resp, 404, "not_found")
    assert_problem(globex.post(f"/units/{world.acme}/accesses",
                               json={"account_id": world.bob}), 404)


def test_an_employee_session_gets_403_and_a_reader_may_not_write(
    app: Flask, client: FlaskClient, world: World
) -> None:
    page = sign_in_to_dashboard(app, client, "carl@acme.example")
    csrf = {"X-CSRF-Token": csrf_token(page.get_data(as_text=True))}
    session = Api(client, None)
    assert_problem(session.get(f"/units/{world.sales}/accesses"), 403, "forbidden")
    assert_problem(session.get("/accesses"), 403, "forbidden")
    assert_problem(session.post(f"/units/{world.sales}/accesses/bulk", headers=csrf,
                                json={"action": "suspend", "selection": {"ids": ["x"]}}), 403)
    assert_problem(session.get(f"/units/{world.globex}/accesses"), 404)
    # a custom group with users.read but not users.manage
    with app.app_context():
        groups.set_group("acme-sales", "readers", ["users.read"])
        row = accesses.find(world.carl, world.sales)
        assert row is not None
        with atomic():
            accesses.set_roles(row, ["employee", "readers"])
        access_id = row.id
    listed = session.get(f"/units/{world.sales}/accesses").get_json()
    assert [i["email"] for i in listed["items"]] == ["carl@acme.example"]
    everywhere = session.get("/accesses").get_json()
    assert {i["unit_id"] for i in everywhere["items"]} == {world.sales}
    path = f"/units/{world.sales}/accesses/{access_id}"
    assert session.get(path).status_code == 200
    assert_problem(session.patch(path, json={"roles": []}, headers=csrf), 403, "forbidden")
    assert_problem(session.post(path + "/suspend", headers=csrf), 403, "forbidden")
    assert_problem(session.delete(path, headers=csrf), 403, "forbidden")


def test_bad_input_is_a_problem_and_writes_nothing(
    app: Flask, client: FlaskClient, world: World
) -> None:
    api = api_for(app, client, "acme")
    before = _count(app, Access)
    url = f"/units/{world.acme}/accesses"
    assert_problem(api.post(url, json={}), 422, "invalid_input")
    assert_problem(api.post(url, json={"email": "a@b.example", "account_id": "x"}), 422)
    assert_problem(api.post(url, json={"email": "not-an-address"}), 422)
    assert_problem(api.post(url, json={"account_id": world.carl, "notifications": ["x"]}), 422,
                   "unknown_event")
    assert_problem(api.post(url, json={"account_id": world.carl, "permission_groups": ["x"]}),
                   422, "invalid_group")
    assert_problem(api.post(url, data="{", content_type="application/json"), 400)
    assert_problem(api.post(url, data="a=b", content_type="text/plain"), 415)
    assert _count(app, Access) == before
