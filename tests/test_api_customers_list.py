"""The customer list's total and its activity filter at the edges (issue 12,
"Scale"): the total is opt-in (``with_total=true``) except when the whole list is on
the first page, and an activity filter pages by reading customers in rounds, so a
page is full and exact whatever the round size, on both backends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.accounts import accesses
from idp.store import customers_repo
from idp.store.models import utcnow
from idp.store.unit_of_work import atomic
from idp.units import registry as units
from tests.support import oidc
from tests.support.api import Api, api_for
from tests.test_api_customers import access_to, company


def walk(api: Api, **query: Any) -> tuple[list[str], list[int | None]]:
    """Every page of the list: the names, and each page's total."""
    names: list[str] = []
    totals: list[int | None] = []
    cursor = None
    while True:
        params = {**query, **({"cursor": cursor} if cursor else {})}
        resp = api.get("/customers", query_string=params)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        page = resp.get_json()
        names += [c["name"] for c in page["items"]]
        totals.append(page["total"])
        cursor = page["next_cursor"]
        if cursor is None:
            return names, totals


def test_total_is_opt_in_and_activity_pages_are_exact_in_any_round_size(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = api_for(app, client)
    ids = {name: company(api, name)["id"] for name in
           ("A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8")}
    ann = oidc.make_account(app, "ann@a.example")
    for name in ("A2", "A5", "A7"):
        access_to(app, ann, ids[name], ["employee"])
    with app.app_context():
        sub = units.create("A8 Sales", parent=ids["A8"]).id
    access_to(app, ann, sub, ["employee"])
    access_to(app, ann, ids["A4"], ["employee"])  # an access, never used: still never
    with app.app_context(), atomic():
        accesses.record_signin(ann, ids["A2"], utcnow() - timedelta(days=1))
        accesses.record_signin(ann, ids["A5"], utcnow() - timedelta(days=300))
        accesses.record_signin(ann, ids["A7"], utcnow() - timedelta(days=89))
        accesses.record_signin(ann, sub, utcnow() - timedelta(days=2))  # through a sub-unit

    # the whole list on its first page: the total comes free
    assert walk(api) == ([f"A{i}" for i in range(1, 9)], [8])
    # more pages: no total unless asked for
    assert walk(api, limit=3)[1] == [None, None, None]
    assert walk(api, limit=3, with_total="true")[1] == [8, 8, 8]

    expected = {
        "active": ["A2", "A7", "A8"],
        "dormant": ["A5"],
        "never": ["A1", "A3", "A4", "A6"],
    }
    for first_round in (1, 2, 200):  # one candidate per round upwards
        monkeypatch.setattr(customers_repo, "FIRST_ROUND", first_round)
        monkeypatch.setattr(customers_repo, "MAX_ROUND", max(first_round, 4))
        for activity, names in expected.items():
            for limit in (1, 2, 50):
                got, totals = walk(api, activity=activity, limit=limit, with_total="true")
                assert got == names, (activity, limit, first_round)
                assert set(totals) == {len(names)}
            got, _ = walk(api, activity=activity, kind="company", q="a", limit=1)
            assert got == names
    assert walk(api, activity="dormant", status="blocked", with_total="true") == ([], [0])
