"""Lists and bulk actions over accesses (issue 12, item 7): filters, keyset paging
without duplicates or gaps, totals, the platform-wide list per caller, bulk by ids
and by filter with per-item outcomes, and bad input."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.accounts import access_admin, accesses
from idp.rights import groups, staff
from idp.store.db import db
from idp.store.models import Access, Account, utcnow
from idp.store.unit_of_work import atomic
from idp.units import registry as units
from tests.support.api import Api, api_for, assert_problem

NOW = utcnow()


@pytest.fixture
def people(app: Flask) -> dict[str, str]:
    """ACME (with sub-unit Sales) and Globex; 12 people at ACME, 3 at Sales, 4 at Globex."""
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
        sales = units.create("ACME Sales", parent="acme", slug="acme-sales").id
        globex = units.create("Globex", slug="globex").id
        groups.set_group("acme", "buyers", ["orders.create"])
        spec: list[tuple[str, str, list[str], str, Any]] = []
        for i in range(12):
            roles = ["main_user"] if i == 0 else ["employee"] + (["buyers"] if i % 3 == 0 else [])
            status = "suspended" if i in (4, 5) else "active"
            signed = None if i % 2 else NOW - timedelta(days=i * 10)
            domain = "acme.example" if i < 8 else "contractor.example"
            spec.append((f"p{i:02d}@{domain}", acme, roles, status, signed))
        for i in range(3):
            spec.append((f"s{i}@acme.example", sales, ["employee"], "active", None))
        for i in range(4):
            spec.append((f"g{i}@globex.example", globex, ["main_user"], "active", None))
        for email, unit, roles, status, signed in spec:
            account = Account(email=email, email_verified=True, given_name=email[:3].upper(),
                              family_name="Zed" if email.startswith("p07") else "Other")
            db.session.add(account)
            db.session.flush()
            with atomic():
                row = accesses.create(account.id, unit, roles, "test", event=None)
                row.status, row.last_signin_at = status, signed
        return {"acme": acme, "sales": sales, "globex": globex}


def walk(api: Api, path: str, limit: int, **query: Any) -> tuple[list[dict[str, Any]], int]:
    seen: list[dict[str, Any]] = []
    cursor = None
    total = -1
    while True:
        q = {"limit": limit, **query}
        if cursor:
            q["cursor"] = cursor
        resp = api.get(path, query_string=q)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        page = resp.get_json()
        total = page["total"] if page["total"] is not None else total
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen, total


def emails(items: list[dict[str, Any]]) -> list[str]:
    return [i["email"] for i in items]


def test_paging_has_no_duplicates_or_gaps_and_a_total(
    app: Flask, client: FlaskClient, people: dict[str, str]
) -> None:
    api = api_for(app, client, "acme")
    acme = f"/units/{people['acme']}/accesses"
    items, total = walk(api, acme, 5)
    assert len(items) == 12 == total
    assert emails(items) == sorted(emails(items)) and len(set(emails(items))) == 12
    items, total = walk(api, acme, 4, include_sub_units="true")
    assert total == 15 and len({i["id"] for i in items}) == 15
    assert {i["unit_id"] for i in items} == {people["acme"], people["sales"]}


def test_filters(app: Flask, client: FlaskClient, people: dict[str, str]) -> None:
    api = api_for(app, client, "acme")
    acme = f"/units/{people['acme']}/accesses"

    def only(**query: Any) -> list[str]:
        items, total = walk(api, acme, 3, **query)
        assert total == len(items)
        return emails(items)

    assert only(status="suspended") == ["p04@acme.example", "p05@acme.example"]
    assert only(role="main_user") == ["p00@acme.example"]
    assert only(permission_group="buyers") == [
        "p03@acme.example", "p06@acme.example", "p09@contractor.example"]
    assert len(only(email_domain="contractor.example")) == 4
    assert only(q="zed") == ["p07@acme.example"]  # family name prefix
    assert only(q="P1") == ["p10@contractor.example", "p11@contractor.example"]
    assert only(q="100%") == []  # LIKE wildcards are plain characters
    assert only(q="p0_") == [] and only(q="o'brien") == [] and only(q="\\' --") == []
    assert len(only(never_signed_in="true")) == 6
    since = (NOW - timedelta(days=35)).isoformat()
    assert only(signed_in_after=since) == ["p00@acme.example", "p02@acme.example"]
    before = only(signed_in_before=since)
    assert before == ["p04@acme.example", "p06@acme.example", "p08@contractor.example",
                      "p10@contractor.example"]
    assert only(status="active", email_domain="acme.example", never_signed_in="true") == [
        "p01@acme.example", "p03@acme.example", "p07@acme.example"]


def test_the_platform_list_shows_each_caller_its_own(
    app: Flask, client: FlaskClient, people: dict[str, str]
) -> None:
    operator = api_for(app, client)
    items, total = walk(operator, "/accesses", 7)
    assert total == -1  # across customers, counted only on request
    items, total = walk(operator, "/accesses", 7, with_total="true")
    assert total == 19 and len({i["id"] for i in items}) == 19
    # person conditions over every unit run first (a subquery in address order)
    items, total = walk(operator, "/accesses", 2, q="p1")
    assert emails(items) == ["p10@contractor.example", "p11@contractor.example"] and total == 2
    items, total = walk(operator, "/accesses", 3, email_domain="acme.example",
                        status="active", with_total="true")
    assert total == len(items) == 9 and emails(items) == sorted(emails(items))
    items, _ = walk(operator, "/accesses", 1, q="g")
    assert emails(items) == [f"g{i}@globex.example" for i in range(4)]
    unit_client = api_for(app, client, "acme-sales")
    items, _ = walk(unit_client, "/accesses", 50)
    assert {i["unit_id"] for i in items} == {people["sales"]}
    with app.app_context():
        db.session.add(Account(email="sam@operator.example", email_verified=True))
        db.session.commit()
        staff.add("sam@operator.example")
        staff.assign("sam@operator.example", "globex", "processor", ["users.read"])
        sam = db.session.scalars(
            select(Account.id).where(Account.email == "sam@operator.example")).one()
        from idp.rights import Actor

        bounds = access_admin.scope(Actor.staff(sam), "users.read", None, True)
        assert bounds.unit_ids == frozenset({people["globex"]})
        assert access_admin.scope(Actor.staff(sam), "users.manage", None, True).unit_ids == (
            frozenset())


def test_bad_list_input_is_a_problem(
    app: Flask, client: FlaskClient, people: dict[str, str]
) -> None:
    api = api_for(app, client, "acme")
    acme = f"/units/{people['acme']}/accesses"
    assert_problem(api.get(acme, query_string={"status": "gone"}), 422)
    assert_problem(api.get(acme, query_string={"limit": 201}), 422)
    assert_problem(api.get(acme, query_string={"cursor": "WzFd"}), 400, "invalid_cursor")
    assert_problem(api.get(acme, query_string={"email_domain": "a b"}), 422)
    assert_problem(api.get(acme, query_string={"signed_in_before": "yesterday"}), 422)
    assert_problem(api.get("/accesses", query_string={"include_sub_units": "true"}), 422)


def _status(app: Flask, unit_id: str) -> dict[str, str]:
    with app.app_context():
        rows = db.session.execute(
            select(Account.email, Access.status).join(Access.account)
            .where(Access.unit_id == unit_id)).all()
        return {r.email: r.status for r in rows}


def test_bulk_by_ids_reports_per_item(
    app: Flask, client: FlaskClient, people: dict[str, str]
) -> None:
    api = api_for(app, client, "acme")
    acme = f"/units/{people['acme']}/accesses"
    items, _ = walk(api, acme, 50)
    ids = {i["email"]: i["id"] for i in items}
    foreign, _ = walk(api_for(app, client, "globex"), f"/units/{people['globex']}/accesses", 50)
    chosen = [ids["p00@acme.example"], ids["p01@acme.example"], ids["p04@acme.example"],
              foreign[0]["id"], "no-such-id"]
    resp = api.post(f"{acme}/bulk", json={"action": "suspend", "selection": {"ids": chosen}})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["counts"] == {"done": 1, "unchanged": 1, "refused": 3}
    outcome = {i["id"]: (i["outcome"], i["code"]) for i in body["items"]}
    assert outcome == {
        ids["p00@acme.example"]: ("refused", "last_main_user"),
        ids["p04@acme.example"]: ("unchanged", None),
        foreign[0]["id"]: ("refused", "not_found"),
        "no-such-id": ("refused", "not_found"),
    }
    states = _status(app, people["acme"])
    assert states["p01@acme.example"] == "suspended" and states["p00@acme.example"] == "active"
    assert _status(app, people["globex"])[foreign[0]["email"]] == "active"
    resend = api.post(f"{acme}/bulk", json={"action": "resend",
                                            "selection": {"ids": chosen[:1]}}).get_json()
    assert resend["items"] == [{"id": chosen[0], "outcome": "refused", "code": "not_invited"}]


def test_bulk_by_filter_walks_every_match_in_batches(
    app: Flask, client: FlaskClient, people: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access_admin, "BATCH", 2)  # many batches over a few rows
    api = api_for(app, client, "acme")
    acme = f"/units/{people['acme']}/accesses"
    resp = api.post(f"{acme}/bulk", json={
        "action": "suspend", "selection": {"filter": {"status": "active"}}})
    body = resp.get_json()
    # ACME's 10 active and Sales' 3 (a unit's bulk covers its sub-units); the main user stays
    assert body["counts"] == {"done": 12, "unchanged": 0, "refused": 1}, body
    assert body["items"][0]["code"] == "last_main_user"
    assert set(_status(app, people["sales"]).values()) == {"suspended"}
    assert set(_status(app, people["globex"]).values()) == {"active"}
    body = api.post(f"{acme}/bulk", json={"action": "remove", "selection": {
        "filter": {"email_domain": "contractor.example"}}}).get_json()
    assert body["counts"]["done"] == 4
    assert not any(e.endswith("contractor.example") for e in _status(app, people["acme"]))
    operator = api_for(app, client)
    body = operator.post("/accesses/bulk", json={
        "action": "reactivate", "selection": {"filter": {"status": "suspended"}}}).get_json()
    assert body["counts"]["done"] == 10  # 14 suspended, 4 of them removed
    assert set(_status(app, people["acme"]).values()) == {"active"}


def test_bad_bulk_input_changes_nothing(
    app: Flask, client: FlaskClient, people: dict[str, str]
) -> None:
    api = api_for(app, client, "acme")
    url = f"/units/{people['acme']}/accesses/bulk"
    before = _status(app, people["acme"])
    for body in (
        {"action": "explode", "selection": {"ids": ["a"]}},
        {"action": "suspend", "selection": {}},
        {"action": "suspend", "selection": {"ids": ["a"], "filter": {}}},
        {"action": "suspend", "selection": {"ids": []}},
        {"action": "suspend", "selection": {"ids": ["x"] * 1001}},
        {"action": "suspend", "selection": {"filter": {"status": "gone"}}},
        {"action": "suspend", "selection": {"filter": {"colour": "red"}}},
    ):
        assert_problem(api.post(url, json=body), 422)
    assert _status(app, people["acme"]) == before
    assert_problem(api_for(app, client, "globex").post(url, json={
        "action": "suspend", "selection": {"filter": {}}}), 404)
    assert _status(app, people["acme"]) == before


def test_staff_see_their_assigned_customers_only(
    app: Flask, client: FlaskClient, people: dict[str, str]
) -> None:
    from tests.support.login import csrf_token, sign_in_to_dashboard

    with app.app_context():
        db.session.add(Account(email="sam@operator.example", email_verified=True,
                               given_name="Sam", family_name="Staff"))
        db.session.commit()
        staff.add("sam@operator.example")
        staff.assign("sam@operator.example", "globex", "processor", ["users.read"])
    page = sign_in_to_dashboard(app, client, "sam@operator.example")
    csrf = {"X-CSRF-Token": csrf_token(page.get_data(as_text=True))}
    session = Api(client, None)
    assert session.get("/me").get_json()["kind"] == "staff"
    items, _ = walk(session, "/accesses", 10)
    assert {i["unit_id"] for i in items} == {people["globex"]} and len(items) == 4
    assert_problem(session.get(f"/units/{people['acme']}/accesses"), 404)
    # a processor without users.manage may not act, here or across customers
    body = {"action": "suspend", "selection": {"filter": {}}}
    assert_problem(session.post(f"/units/{people['globex']}/accesses/bulk", json=body,
                                headers=csrf), 403)
    assert_problem(session.post("/accesses/bulk", json=body, headers=csrf), 403)
    assert set(_status(app, people["globex"]).values()) == {"active"}


def test_the_bulk_answer_stays_bounded(
    app: Flask, client: FlaskClient, people: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access_admin, "MAX_REPORTED", 2)
    api = api_for(app, client, "acme")
    body = api.post(f"/units/{people['acme']}/accesses/bulk", json={
        "action": "reactivate", "selection": {"filter": {}}}).get_json()
    # 2 suspended at ACME are done; the other 13 were active: unchanged
    assert body["counts"] == {"done": 2, "unchanged": 13, "refused": 0}
    assert len(body["items"]) == 2 and body["omitted"] == 11
    assert all(i["outcome"] == "unchanged" for i in body["items"])
