"""Purchase authorisation for merchants (issue 17, item 2): the person's access token
with the ``purchases`` scope, approved/refused answers with reasons, confirm, cancel,
amount changes, idempotent retries, another merchant seeing 404, and parallel
purchases that would together overspend (exactly the right number approved, on
PostgreSQL through separate connections)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.cli import main
from idp.units import registry as units
from tests.support.api import assert_problem
from tests.support.concurrency import run_together
from tests.support.purchases import Shop, merchant, person, token


@pytest.fixture
def acme(app: Flask) -> str:
    with app.app_context():
        return units.create("ACME", slug="acme").id


def _budget(app: Flask, *args: str) -> None:
    res = app.test_cli_runner().invoke(
        main, ["budgets", "set", "--unit", "acme", *args, "--currency", "EUR", "--json"])
    assert res.exit_code == 0, res.output


def test_approve_confirm_cancel_and_amount(app: Flask, client: FlaskClient, acme: str) -> None:
    ann = person(app, "ann@acme.example", acme, ["employee"])
    _budget(app, "--access", "ann@acme.example", "--period", "month", "--amount", "100.00",
            "--per-order", "60.00")
    shop = Shop(client, token(app, client, merchant(app), ann, acme))
    lines = [{"sku": "A-1", "description": "Paper", "quantity": 2, "amount": "40.00"}]
    resp = shop.buy("40.00", order_ref="PO-1", lines=lines)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    first = resp.get_json()
    assert first["status"] == "approved" and first["reason"] is None
    assert first["amount"] == "40.00" and first["lines"][0]["sku"] == "A-1"
    assert first["budget"] == {"currency": "EUR", "remaining": "60.00",
                               "per_order_limit": "60.00",
                               "period_ends": first["budget"]["period_ends"]}
    assert shop.buy("60.01").get_json()["reason"] == "over_per_order_limit"
    assert shop.buy("10.00", currency="USD").get_json()["reason"] == "currency_mismatch"
    second = shop.buy("60.00").get_json()
    assert second["status"] == "approved"
    assert shop.buy("0.01").get_json()["reason"] == "over_budget"
    # confirm spends; cancelling a confirmed purchase is refused
    assert shop.post(f"/{first['id']}/confirm").get_json()["status"] == "confirmed"
    assert shop.post(f"/{first['id']}/confirm").get_json()["status"] == "confirmed"
    assert_problem(shop.post(f"/{first['id']}/cancel"), 409, "wrong_state")
    # a lower amount gives back the difference, a higher one that does not fit is 409
    assert shop.post(f"/{second['id']}/amount", {"amount": "50.00"}).get_json()["amount"] == (
        "50.00")
    assert_problem(shop.post(f"/{second['id']}/amount", {"amount": "61.00"}), 409,
                   "over_per_order_limit")
    assert_problem(shop.post(f"/{first['id']}/amount", {"amount": "51.00"}), 409, "over_budget")
    assert shop.get(first["id"]).get_json()["amount"] == "40.00"  # unchanged
    assert shop.buy("10.00").get_json()["status"] == "approved"  # 40 + 50 + 10
    assert shop.buy("0.01").get_json()["reason"] == "over_budget"
    # cancelling gives the reservation back
    assert shop.post(f"/{second['id']}/cancel").get_json()["status"] == "cancelled"
    assert shop.buy("50.00").get_json()["status"] == "approved"
    assert shop.get(second["id"]).get_json()["status"] == "cancelled"
    # invalid input is a 422 and records nothing
    assert_problem(shop.buy("1.001"), 422)
    assert_problem(shop.buy("10.00", currency="XXX"), 422, "unknown_currency")
    assert_problem(shop.buy("1", lines=[{"description": "x", "amount": "1"}] * 101), 422)
    with app.app_context():
        from idp import audit
        actions = [e.action for e in audit.search(0, 100, unit_ids=[acme])]
    assert actions.count("purchase.approved") == 4 and "purchase.confirmed" in actions
    assert "purchase.refused" in actions and "purchase.amount_changed" in actions


def test_who_may_buy_and_who_may_see(app: Flask, client: FlaskClient, acme: str) -> None:
    ann = person(app, "ann@acme.example", acme, ["employee"])
    ops = person(app, "ops@acme.example", acme, [])  # holds no orders.create
    shop_rp, other_rp = merchant(app, "Shop"), merchant(app, "Other shop")
    shop = Shop(client, token(app, client, shop_rp, ann, acme))
    bought = shop.buy("5.00").get_json()
    assert bought["status"] == "approved"  # no budget applies: no limit
    assert Shop(client, token(app, client, shop_rp, ops, acme)).buy("5.00").get_json()[
        "reason"] == "not_allowed"
    other = Shop(client, token(app, client, other_rp, ann, acme))
    for resp in (other.get(bought["id"]), other.post(f"/{bought['id']}/confirm"),
                 other.post(f"/{bought['id']}/cancel"),
                 other.post(f"/{bought['id']}/amount", {"amount": "1"})):
        assert_problem(resp, 404, "not_found")
    assert_problem(shop.get("0" * 32), 404)
    # no token, a bad token, a token without the scope
    assert_problem(client.post("/api/v1/purchases", json={}), 401)
    assert_problem(Shop(client, "not-a-token").get(bought["id"]), 401, "invalid_token")
    no_scope = Shop(client, token(app, client, shop_rp, ann, acme, scope="openid profile"))
    resp = no_scope.buy("1.00")
    assert_problem(resp, 403, "insufficient_scope")
    assert 'scope="purchases"' in resp.headers["WWW-Authenticate"]
    # the Idempotency-Key is required
    resp = client.post("/api/v1/purchases", json={"order_ref": "x", "amount": "1",
                       "currency": "EUR"}, headers={"Authorization": f"Bearer {shop.access_token}"})
    assert_problem(resp, 400, "idempotency_key_required")


def test_idempotent_retries(app: Flask, client: FlaskClient, acme: str) -> None:
    ann = person(app, "ann@acme.example", acme, ["employee"])
    bob = person(app, "bob@acme.example", acme, ["employee"])
    _budget(app, "--role", "employee", "--period", "month", "--amount", "100.00")
    rp = merchant(app)
    shop = Shop(client, token(app, client, rp, ann, acme))
    first = shop.buy("70.00", key="retry-1", order_ref="PO-7")
    again = shop.buy("70.00", key="retry-1", order_ref="PO-7")
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.get_json() == again.get_json()
    # the retry reserved nothing more: 30 are left
    assert shop.buy("30.00").get_json()["status"] == "approved"
    assert_problem(shop.buy("71.00", key="retry-1", order_ref="PO-7"), 422,
                   "idempotency_key_reused")
    # another person's request with the same key is their own
    bob_shop = Shop(client, token(app, client, rp, bob, acme))
    theirs = bob_shop.buy("70.00", key="retry-1", order_ref="PO-7")
    assert theirs.status_code == 201 and "Idempotent-Replayed" not in theirs.headers
    assert theirs.get_json()["id"] != first.get_json()["id"]


def test_parallel_purchases_never_overspend(app: Flask, acme: str) -> None:
    """Ten parallel purchases of 30 against 100 (and, for two people, against a
    unit pool of 150): exactly three, resp. five, are approved."""
    ann = person(app, "ann@acme.example", acme, ["employee"])
    bob = person(app, "bob@acme.example", acme, ["employee"])
    _budget(app, "--role", "employee", "--period", "month", "--amount", "100.00")
    _budget(app, "--period", "month", "--amount", "150.00")  # the unit's pool
    rp = merchant(app)
    setup = app.test_client()
    tokens = {who: token(app, setup, rp, acc, acme) for who, acc in (("ann", ann), ("bob", bob))}

    def burst(whose: list[str]) -> list[str]:
        answers: list[str] = []

        def job(who: str) -> Callable[[], None]:
            def run() -> None:
                resp = Shop(app.test_client(), tokens[who]).buy("30.00")
                assert resp.status_code == 201, resp.get_data(as_text=True)
                answers.append(f"{who}:{resp.get_json()['status']}")
            return run

        run_together(*(job(w) for w in whose))
        return answers

    answers = burst(["ann"] * 10)
    assert answers.count("ann:approved") == 3 and answers.count("ann:refused") == 7
    answers = burst(["bob"] * 6 + ["ann"] * 2)
    # Bob has 100 personally, the pool 150 - 90 (Ann's) = 60: two of Bob's fit;
    # Ann's own budget has 10 left: none of hers
    assert answers.count("bob:approved") == 2, answers
    assert answers.count("ann:approved") == 0, answers
