"""Claims and payment methods (issue 17, items 5 and 6): with the ``purchases`` scope
ID tokens, UserInfo and purchase answers carry the buyer's budget, the approval
threshold and the payment methods allowed for the chosen unit and role; without the
scope none of it. Card numbers are refused as company-card references."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.cli import main
from idp.purchases.payment_methods import looks_like_pan, luhn_valid
from idp.rights import groups
from idp.units import registry as units
from tests.support import oidc
from tests.support.api import api_for, assert_problem
from tests.support.purchases import Shop, merchant, person, token


def test_card_numbers_are_recognised() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    for pan in ("4111111111111111", "4111 1111 1111 1111", "ref-5500-0000-0000-0004",
                "378282246310005"):
        assert looks_like_pan(pan), pan
    for ref in ("tok_4111111111111112", "CARD-42", "123456789012", "acct 2026-12-06"):
        assert not looks_like_pan(ref), ref


def _cli(app: Flask, *args: str) -> dict[str, Any]:
    res = app.test_cli_runner().invoke(main, [*args, "--json"])
    assert res.exit_code == 0, res.output
    return dict(json.loads(res.output))


@pytest.fixture
def company(app: Flask) -> dict[str, str]:
    """ACME with sub-units Sales (own methods) and Field (none: ACME's apply)."""
    with app.app_context():
        acme = units.create("ACME", slug="acme").id
        sales = units.create("Sales", slug="sales", parent="acme").id
        field = units.create("Field", slug="field", parent="acme").id
        groups.set_group("sales", "buyers", ["orders.create"])
    _cli(app, "payment-methods", "set", "--unit", "acme", "--kind", "purchase_order")
    _cli(app, "payment-methods", "set", "--unit", "sales", "--kind", "invoice",
         "--company-name", "ACME Sales", "--street", "Hauptstr. 1", "--postal-code", "10115",
         "--city", "Berlin", "--country", "DE")
    _cli(app, "payment-methods", "set", "--unit", "sales", "--kind", "company_card",
         "--reference", "tok_acme_card_7", "--role", "buyers")
    _cli(app, "payment-methods", "set", "--unit", "sales", "--kind", "cost_centre",
         "--min-budget", "500.00", "--currency", "EUR")
    _cli(app, "budgets", "set", "--unit", "sales", "--role", "employee", "--period", "month",
         "--amount", "100.00", "--per-order", "40.00", "--currency", "EUR")
    _cli(app, "budgets", "set", "--unit", "sales", "--group", "buyers", "--period", "month",
         "--amount", "1000.00", "--currency", "EUR")
    return {"acme": acme, "sales": sales, "field": field}


def _kinds(claims: dict[str, Any]) -> list[str]:
    return sorted(m["kind"] for m in claims.get("payment_methods", []))


def test_methods_per_unit_and_role_in_the_claims(
    app: Flask, client: FlaskClient, company: dict[str, str]
) -> None:
    ann = person(app, "ann@acme.example", company["sales"], ["employee"])
    bea = person(app, "bea@acme.example", company["sales"], ["employee", "buyers"])
    cem = person(app, "cem@acme.example", company["field"], ["employee"])
    with app.app_context():
        from idp.accounts import accesses
        from idp.store.db import db
        from idp.store.models import Access
        from idp.store.unit_of_work import atomic
        row = db.session.query(Access).filter_by(account_id=bea).one()
        with atomic():
            accesses.set_facts(row, {"cost_centre": "CC-9"}, "employee")
    rp = merchant(app)
    got: dict[str, dict[str, Any]] = {}
    for who, acc, unit in (("ann", ann, "sales"), ("bea", bea, "sales"), ("cem", cem, "field")):
        at = token(app, client, rp, acc, company[unit])
        got[who] = oidc.userinfo(client, at).get_json()
    # Ann: employee budget 100 (below the cost centre's minimum), not a buyer
    assert _kinds(got["ann"]) == ["invoice"]
    invoice = got["ann"]["payment_methods"][0]
    assert invoice["address"] == {"name": "ACME Sales", "street": "Hauptstr. 1",
                                  "postal_code": "10115", "city": "Berlin", "country": "DE"}
    assert got["ann"]["budget"]["remaining"] == "100.00"
    assert got["ann"]["budget"]["per_order_limit"] == "40.00"
    assert got["ann"]["approval_required_above"] == "40.00"
    # Bea: buyers group budget 1000 -> company card and cost centre (with hers)
    assert _kinds(got["bea"]) == ["company_card", "cost_centre", "invoice"]
    by_kind = {m["kind"]: m for m in got["bea"]["payment_methods"]}
    assert by_kind["company_card"]["reference"] == "tok_acme_card_7"
    assert by_kind["cost_centre"]["cost_centre"] == "CC-9"
    assert got["bea"]["budget"]["remaining"] == "1000.00"
    assert "approval_required_above" not in got["bea"]
    # Cem in Field: no methods of its own, ACME's apply; no budget applies
    assert _kinds(got["cem"]) == ["purchase_order"] and "budget" not in got["cem"]
    # the purchase answer carries the same facts, after the reservation
    answer = Shop(client, token(app, client, rp, ann, company["sales"])).buy("30.00").get_json()
    assert answer["budget"]["remaining"] == "70.00"
    assert [m["kind"] for m in answer["payment_methods"]] == ["invoice"]


def test_the_id_token_carries_the_claims_only_with_the_scope(
    app: Flask, client: FlaskClient, company: dict[str, str]
) -> None:
    ann = person(app, "ann@acme.example", company["sales"], ["employee"])
    rp = merchant(app)
    for scope, present in (("openid purchases", True), ("openid profile", False)):
        si = oidc.sign_in(app, client, rp, ann, unit_id=company["sales"], scope=scope)
        body = oidc.exchange(client, rp, si).get_json()
        claims = oidc.verify_jwt(client, body["id_token"]).claims
        info = oidc.userinfo(client, body["access_token"]).get_json()
        for released in (claims, info):
            assert ("budget" in released) is present
            assert ("payment_methods" in released) is present
    assert "purchases" in client.get("/.well-known/openid-configuration").get_json()[
        "scopes_supported"]


def test_payment_methods_by_api(app: Flask, client: FlaskClient, company: dict[str, str]) -> None:
    api = api_for(app, client, company["sales"])
    sales = company["sales"]
    resp = api.call("PUT", f"/units/{sales}/payment-methods/company_card",
                    json={"reference": "4111 1111 1111 1111"})
    assert_problem(resp, 422, "card_number_refused")
    resp = api.call("PUT", f"/units/{sales}/payment-methods/company_card",
                    json={"reference": "tok_new", "roles": ["nobody"]})
    assert_problem(resp, 422, "unknown_role")
    resp = api.call("PUT", f"/units/{sales}/payment-methods/invoice", json={})
    assert_problem(resp, 422, "invalid_address")
    assert_problem(api.call("PUT", f"/units/{sales}/payment-methods/cash", json={}), 404)
    resp = api.call("PUT", f"/units/{sales}/payment-methods/company_card",
                    json={"reference": "tok_new"})
    assert resp.status_code == 200 and resp.get_json()["reference"] == "tok_new"
    kinds = [m["kind"] for m in api.get(f"/units/{sales}/payment-methods").get_json()["items"]]
    assert kinds == ["company_card", "cost_centre", "invoice"]
    assert api.delete(f"/units/{sales}/payment-methods/invoice").status_code == 204
    assert_problem(api.delete(f"/units/{sales}/payment-methods/invoice"), 404)
    # the sub-unit's admin sees nothing of the parent, another unit's admin neither
    assert_problem(api.get(f"/units/{company['acme']}/payment-methods"), 404)
    field_api = api_for(app, client, company["field"])
    assert_problem(field_api.get(f"/units/{sales}/payment-methods"), 404)
    assert_problem(field_api.get(f"/units/{sales}/budgets"), 404)
