"""Operator staff through the administration API (issue 12, item 6): staff members,
their assignments to customers, the authorisations view and removing a selection
of authorisations in one call."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from idp.accounts import accesses
from idp.rights import staff
from idp.store.db import db
from idp.store.models import Access, AuditEvent, StaffAssignment
from idp.store.unit_of_work import atomic
from idp.units import customers
from idp.units import registry as units
from tests.support import oidc
from tests.support.api import Api, api_for, assert_problem
from tests.support.login import CSRF_RE, sign_in_to_dashboard


def _customer(app: Flask, name: str) -> str:
    with app.app_context():
        return customers.create("company", {"name": name}).id


def _access(app: Flask, account_id: str, unit_id: str, roles: list[str]) -> str:
    with app.app_context():
        with atomic():
            row = accesses.create(account_id, unit_id, roles, "test", event=None)
        return row.id


def _count(model: Any, *where: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_the_operator_manages_staff_and_their_assignments(
    app: Flask, client: FlaskClient
) -> None:
    acme = _customer(app, "ACME")
    with app.app_context():
        sub = units.create("ACME Sales", parent=acme).id
    sam = oidc.make_account(app, "sam@operator.example", given_name="Sam", family_name="S")
    api = api_for(app, client)
    made = api.post("/staff", json={"email": "Sam@Operator.example"})
    assert made.status_code == 201, made.get_data(as_text=True)
    assert made.get_json()["account_id"] == sam and made.get_json()["assignments"] == []
    assert_problem(api.post("/staff", json={"email": "nobody@x.example"}), 422,
                   "account_not_found")
    put = api.call("PUT", f"/customers/{acme}/staff/{sam}",
                   json={"kind": "processor", "permissions": ["users.read"]})
    assert put.status_code == 200, put.get_data(as_text=True)
    assert put.get_json() == {"customer_id": acme, "customer": "acme", "kind": "processor",
                              "permissions": ["users.read"]}
    bad = [
        ({}, 422),
        ({"kind": "processor"}, 422),
        ({"kind": "administrator", "permissions": ["users.read"]}, 422),
        ({"kind": "processor", "permissions": ["fly"]}, 422),
        ({"kind": "boss"}, 422),
    ]
    for body, status in bad:
        assert_problem(api.call("PUT", f"/customers/{acme}/staff/{sam}", json=body), status)
    assert_problem(api.call("PUT", f"/customers/{sub}/staff/{sam}",
                            json={"kind": "administrator"}), 404)
    assert_problem(api.call("PUT", f"/customers/nope/staff/{sam}",
                            json={"kind": "administrator"}), 404)
    [row] = api.get("/staff").get_json()
    assert row["email"] == "sam@operator.example" and row["name"] == "Sam S"
    assert [(a["customer_id"], a["kind"]) for a in row["assignments"]] == [(acme, "processor")]
    assert api.delete(f"/customers/{acme}/staff/{sam}").status_code == 204
    assert_problem(api.delete(f"/customers/{acme}/staff/{sam}"), 404)
    assert api.delete(f"/staff/{sam}").status_code == 204
    assert_problem(api.delete(f"/staff/{sam}"), 404)
    assert api.get("/staff").get_json() == []

    # a unit's client manages no staff
    unit_api = api_for(app, client, acme)
    assert_problem(unit_api.get("/staff"), 403, "forbidden")
    assert_problem(unit_api.post("/staff", json={"email": "sam@operator.example"}), 403)
    assert_problem(unit_api.call("PUT", f"/customers/{acme}/staff/{sam}",
                                 json={"kind": "administrator"}), 403)
    # another customer's client: the customer is not found, whatever the body
    globex = _customer(app, "Globex")
    assert_problem(unit_api.call("PUT", f"/customers/{globex}/staff/{sam}", json={}), 404)
    assert_problem(unit_api.delete(f"/customers/{globex}/staff/{sam}"), 404)


def _setup_view(app: Flask) -> dict[str, str]:
    acme = _customer(app, "ACME")
    globex = _customer(app, "Globex")
    with app.app_context():
        sub = units.create("ACME Sales", parent=acme).id
    ann = oidc.make_account(app, "ann@acme.example", given_name="Ann", family_name="A")
    bob = oidc.make_account(app, "bob@acme.example", given_name="Bob", family_name="B")
    eve = oidc.make_account(app, "eve@globex.example")
    ids = {
        "acme": acme, "globex": globex, "sub": sub, "ann": ann, "bob": bob, "eve": eve,
        "ann_acme": _access(app, ann, acme, ["main_user"]),
        "bob_sub": _access(app, bob, sub, ["employee"]),
        "eve_globex": _access(app, eve, globex, ["main_user"]),
    }
    ids["sam"] = oidc.make_account(app, "sam@operator.example")
    ids["pia"] = oidc.make_account(app, "pia@operator.example")
    ids["pat"] = oidc.make_account(app, "pat@operator.example")
    with app.app_context():
        for email in ("sam@operator.example", "pia@operator.example", "pat@operator.example"):
            staff.add(email)
        staff.assign("sam@operator.example", acme, "administrator")
        staff.assign("pia@operator.example", acme, "processor", ["users.read", "audit.read"])
        staff.assign("pat@operator.example", acme, "processor", ["documents.read"])
    return ids


def _session(app: Flask, email: str) -> tuple[FlaskClient, dict[str, str]]:
    web = app.test_client()
    page = sign_in_to_dashboard(app, web, email)
    token = CSRF_RE.search(page.get_data(as_text=True))
    assert token is not None
    return web, {"X-CSRF-Token": token.group(1)}


def test_the_authorisations_view_shows_accesses_and_staff(
    app: Flask, client: FlaskClient
) -> None:
    ids = _setup_view(app)
    api = api_for(app, client)
    view = api.get(f"/customers/{ids['acme']}/authorisations").get_json()
    assert view["total"] == 2 and view["next_cursor"] is None
    assert [(a["email"], a["unit_id"], a["roles"], a["status"]) for a in view["accesses"]] == [
        ("ann@acme.example", ids["acme"], ["main_user"], "active"),
        ("bob@acme.example", ids["sub"], ["employee"], "active"),
    ]
    assert view["accesses"][1]["unit_name"] == "ACME Sales"
    assert view["accesses"][0]["name"] == "Ann A"
    assert [a["email"] for a in view["administrators"]] == ["sam@operator.example"]
    assert [(p["email"], p["permissions"]) for p in view["processors"]] == [
        ("pat@operator.example", ["documents.read"]),
        ("pia@operator.example", ["audit.read", "users.read"]),
    ]
    first = api.get(f"/customers/{ids['acme']}/authorisations",
                    query_string={"limit": 1}).get_json()
    assert [a["email"] for a in first["accesses"]] == ["ann@acme.example"]
    second = api.get(f"/customers/{ids['acme']}/authorisations",
                     query_string={"limit": 1, "cursor": first["next_cursor"]}).get_json()
    assert [a["email"] for a in second["accesses"]] == ["bob@acme.example"]
    assert second["next_cursor"] is None

    # staff: the processor with users.read sees it, the one without gets 403,
    # an unassigned customer is a 404
    pia, _ = _session(app, "pia@operator.example")
    assert pia.get(f"/api/v1/customers/{ids['acme']}/authorisations").status_code == 200
    assert_problem(pia.get(f"/api/v1/customers/{ids['globex']}/authorisations"), 404)
    pat, _ = _session(app, "pat@operator.example")
    assert_problem(pat.get(f"/api/v1/customers/{ids['acme']}/authorisations"), 403,
                   "forbidden")
    # another customer's client and an employee
    assert_problem(api_for(app, client, ids["globex"]).get(
        f"/customers/{ids['acme']}/authorisations"), 404)
    bob, _ = _session(app, "bob@acme.example")
    assert_problem(bob.get(f"/api/v1/customers/{ids['acme']}/authorisations"), 404)
    assert_problem(api.get(f"/customers/{ids['sub']}/authorisations"), 404)


def test_a_selection_is_removed_in_one_call_and_the_last_main_user_is_kept(
    app: Flask, client: FlaskClient
) -> None:
    ids = _setup_view(app)
    api = api_for(app, client)
    path = f"/customers/{ids['acme']}/authorisations/remove"
    # the last main user refuses the whole call, naming the item; nothing is written
    refused = assert_problem(api.post(path, json={
        "accesses": [ids["bob_sub"], ids["ann_acme"]], "staff": [ids["pat"]]}),
        422, "last_main_user")
    assert refused["errors"][0]["pointer"] == "/body/accesses/1"
    # another customer's access is not in the selection's reach
    foreign = assert_problem(api.post(path, json={"accesses": [ids["eve_globex"]]}), 422,
                             "not_in_customer")
    assert foreign["errors"][0]["pointer"] == "/body/accesses/0"
    assert_problem(api.post(path, json={"staff": [ids["eve"]]}), 422, "not_in_customer")
    assert_problem(api.post(path, json={}), 422, "empty_selection")
    assert_problem(api.post(path, json={"accesses": "all"}), 422, "invalid_input")
    with app.app_context():
        assert _count(Access) == 3 and _count(StaffAssignment) == 3

    # with a second main user, everything selected goes in one transaction
    carl = oidc.make_account(app, "carl@acme.example")
    _access(app, carl, ids["acme"], ["main_user"])
    with app.app_context():
        assert accesses.is_last_main_user(ids["ann"], ids["acme"]) is False
    done = api.post(path, json={
        "accesses": [ids["bob_sub"], ids["ann_acme"]], "staff": [ids["pat"], ids["pia"]]})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["items"] == [
        {"kind": "access", "id": ids["bob_sub"], "result": "removed"},
        {"kind": "access", "id": ids["ann_acme"], "result": "removed"},
        {"kind": "staff", "id": ids["pat"], "result": "removed"},
        {"kind": "staff", "id": ids["pia"], "result": "removed"},
    ]
    with app.app_context():
        assert accesses.is_last_main_user(carl, ids["acme"]) is True
        assert accesses.is_last_main_user(ids["ann"], ids["acme"]) is False
        assert _count(Access, Access.unit_id.in_([ids["acme"], ids["sub"]])) == 1
        assert _count(StaffAssignment) == 1
        actions = db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.action.in_(["access.removed", "staff.unassign",
                                   "customer.authorisations_removed"]))).all()
        assert sorted(actions) == ["access.removed", "access.removed",
                                   "customer.authorisations_removed", "staff.unassign",
                                   "staff.unassign"]


def test_removing_needs_users_manage_per_access_and_the_operator_for_staff(
    app: Flask, client: FlaskClient
) -> None:
    ids = _setup_view(app)
    path = f"/api/v1/customers/{ids['acme']}/authorisations/remove"
    pia, csrf = _session(app, "pia@operator.example")  # users.read only
    assert_problem(pia.post(path, json={"accesses": [ids["bob_sub"]]}, headers=csrf), 403)
    sam, csrf = _session(app, "sam@operator.example")  # administrator
    assert_problem(sam.post(path, json={"staff": [ids["pat"]]}, headers=csrf), 403)
    assert_problem(sam.post(path, json={"accesses": [ids["bob_sub"]]}), 403, "csrf_failed")
    resp = sam.post(path, json={"accesses": [ids["bob_sub"]]}, headers=csrf)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    main_user: Api = api_for(app, client, ids["acme"])
    assert_problem(main_user.post(
        f"/customers/{ids['acme']}/authorisations/remove", json={"staff": [ids["pat"]]}), 403)
    with app.app_context():
        assert _count(Access, Access.id == ids["bob_sub"]) == 0
        assert _count(StaffAssignment) == 3
