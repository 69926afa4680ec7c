"""Attacks on the administration console (/admin/) by people who hold some rights in
a unit and try to get more: permission groups and a domain's auto-join role hand out
no permission the administrator does not hold themselves (as the access settings and
invitations already refuse through :func:`idp.rights.authorization.require_grant`).
And malformed input a browser can send (a NUL byte in a URL id, a filter, a name):
a 404 or a refusal, never a 500 from PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from idp.domains import registry as domain_registry
from idp.domains import rules as domain_rules
from idp.rights import Actor, may
from idp.rights import groups as permission_groups
from idp.store.db import db
from idp.store.models import Access, Domain, ScimToken, WebhookEndpoint
from idp.store.unit_of_work import atomic
from tests.support.login import csrf_token
from tests.support.oidc import make_account, make_unit
from tests.test_console_accesses import browser_of, form_post, give
from tests.test_operator_console import SAM, world


@pytest.fixture
def corp(app: Flask) -> dict[str, Any]:
    """Corp with its main user Ann (no ``impersonate``: only the operator grants it)."""
    ann = make_account(app, "ann@corp.example")
    unit = make_unit(app, ann, "Corp GmbH", roles=["main_user"])
    return {"unit": unit, "ann": ann, "web": browser_of(app, ann)}


def group_permissions(app: Flask, unit: str, name: str) -> list[str] | None:
    with app.app_context():
        found = [g for g in permission_groups.list_groups(unit) if g.name == name]
        return list(found[0].permissions or []) if found else None


def test_a_main_user_defines_no_group_with_a_permission_they_do_not_hold(
    app: Flask, corp: dict[str, Any]
) -> None:
    web, unit, ann = corp["web"], corp["unit"], corp["ann"]
    page = f"/admin/units/{unit}/groups"
    # a new group granting "impersonate", which Ann lacks, is refused
    resp = form_post(web, page, page, {"name": "helpdesk", "permissions": ["impersonate"]})
    assert resp.status_code == 303
    assert group_permissions(app, unit, "helpdesk") is None
    assert 'href="#name"' in web.get(page).get_data(as_text=True)
    # nor may she widen a group she holds herself to gain it
    form_post(web, page, page, {"name": "buyers", "permissions": ["orders.create"]})
    with app.app_context(), atomic():
        row = db.session.query(Access).filter_by(account_id=ann, unit_id=unit).one()
        row.roles = ["main_user", "buyers"]
    form_post(web, page, page, {"name": "buyers",
                                "permissions": ["orders.create", "impersonate"]})
    assert group_permissions(app, unit, "buyers") == ["orders.create"]
    with app.app_context():
        assert not may(Actor.account(ann), "impersonate", unit)
    # what she holds she may still put in a group
    form_post(web, page, page, {"name": "buyers", "permissions": ["orders.create", "audit.read"]})
    assert group_permissions(app, unit, "buyers") == ["audit.read", "orders.create"]


def test_a_units_manage_holder_does_not_raise_their_own_group(app: Flask) -> None:
    """A colleague whose group grants units.manage only makes it grant users.manage."""
    ann = make_account(app, "ann@corp.example")
    unit = make_unit(app, ann, "Corp GmbH", roles=["main_user"])
    with app.app_context():
        permission_groups.set_group(unit, "structure", ["units.manage"])
    ivo = make_account(app, "ivo@corp.example")
    give(app, ivo, unit, ["structure"])
    web = browser_of(app, ivo)
    page = f"/admin/units/{unit}/groups"
    form_post(web, page, page, {"name": "structure",
                                "permissions": ["units.manage", "users.manage"]})
    assert group_permissions(app, unit, "structure") == ["units.manage"]
    with app.app_context():
        assert not may(Actor.account(ivo), "users.manage", unit)


def test_a_domain_admin_sets_no_auto_join_role_above_their_own(app: Flask) -> None:
    """IT with domains.manage only cannot make every new address of the domain a main
    user (then sign up with a second mailbox and hold everything)."""
    ann = make_account(app, "ann@corp.example")
    unit = make_unit(app, ann, "Corp GmbH", roles=["main_user"])
    with app.app_context():
        permission_groups.set_group(unit, "it", ["domains.manage"])
        domain_registry.claim(unit, "corp-probe.example")
    ivo = make_account(app, "ivo@corp.example")
    give(app, ivo, unit, ["employee", "it"])
    web = browser_of(app, ivo)
    page = f"/admin/units/{unit}/domains"
    action = f"{page}/corp-probe.example/rules"
    resp = form_post(web, page, action, {"auto_join": "1", "default_role": "main_user"})
    assert resp.status_code == 303
    with app.app_context():
        rule = domain_rules.rules_of(
            db.session.query(Domain).filter_by(name="corp-probe.example").one())
    assert (rule["auto_join"], rule["default_role"]) == (False, "employee")
    assert "error-summary" in web.get(page).get_data(as_text=True)
    # the employee role (he holds it) is fine, and a main user may choose hers
    form_post(web, page, action, {"auto_join": "1", "default_role": "employee"})
    with app.app_context():
        rule = domain_rules.rules_of(
            db.session.query(Domain).filter_by(name="corp-probe.example").one())
    assert (rule["auto_join"], rule["default_role"]) == (True, "employee")
    boss = browser_of(app, ann)
    form_post(boss, page, action, {"auto_join": "1", "default_role": "commercial_contact"})
    with app.app_context():
        rule = domain_rules.rules_of(
            db.session.query(Domain).filter_by(name="corp-probe.example").one())
    assert rule["default_role"] == "commercial_contact"
    # IT may still change the other rules while the main user's role stays
    form_post(web, page, action, {"auto_join": "1", "default_role": "commercial_contact"})
    form_post(web, page, action, {"default_role": "commercial_contact"})
    with app.app_context():
        rule = domain_rules.rules_of(
            db.session.query(Domain).filter_by(name="corp-probe.example").one())
    assert (rule["auto_join"], rule["default_role"]) == (False, "commercial_contact")


def test_an_id_with_a_nul_byte_in_the_path_is_404_not_500(
    app: Flask, corp: dict[str, Any]
) -> None:
    """PostgreSQL refuses a NUL in a string: ids from the URL are checked for their
    shape before they reach a query (webhook endpoints and deliveries, budgets, SCIM
    tokens in the console; the public merchant stylesheet)."""
    web, unit = corp["web"], corp["unit"]
    base = f"/admin/units/{unit}"
    token = csrf_token(web.get(f"{base}/webhooks").get_data(as_text=True))
    assert web.get(f"{base}/webhooks/a%00b").status_code == 404
    for action in ("webhooks/a%00b/state", "webhooks/a%00b/remove",
                   "webhooks/a%00b/deliveries/c%00d/redeliver", "budgets/a%00b/remove",
                   "scim/a%00b/revoke"):
        resp = web.post(f"{base}/{action}", data={"csrf_token": token, "confirm": "yes"})
        assert resp.status_code == 404, action
    assert app.test_client().get("/branding/merchants/a%00b/1.css").status_code == 404


def test_a_nul_byte_in_a_search_filter_is_dropped_not_a_500(
    app: Flask, corp: dict[str, Any]
) -> None:
    """The audit log's action filter and the operator's customer search."""
    web, unit = corp["web"], corp["unit"]
    resp = web.get(f"/admin/units/{unit}/audit", query_string={"action": "access.\x00"})
    assert resp.status_code == 200
    op = browser_of(app, world(app)[SAM])  # staff assigned to ACME
    resp = op.get("/admin/operator/", query_string={"q": "ACME\x00"})
    assert resp.status_code == 200 and "ACME" in resp.get_data(as_text=True)
    resp = op.get("/admin/operator/customers.csv", query_string={"q": "ACME\x00"})
    assert resp.status_code == 200 and "ACME" in resp.get_data(as_text=True)


@pytest.mark.parametrize("settings_overrides", [{"webhook_allow_private": True}])
def test_a_nul_byte_in_a_name_or_description_is_dropped_not_a_500(
    app: Flask, corp: dict[str, Any]
) -> None:
    """A SCIM token's name and a webhook endpoint's description."""
    web, unit = corp["web"], corp["unit"]
    scim = f"/admin/units/{unit}/scim"
    assert form_post(web, scim, scim, {"name": "HR\x00 system"}).status_code == 303
    hooks = f"/admin/units/{unit}/webhooks"
    resp = form_post(web, hooks, hooks, {"url": "http://127.0.0.1:9/hook",
                                         "description": "ERP\x00 hook"})
    assert resp.status_code == 303
    with app.app_context():
        assert [t.name for t in db.session.query(ScimToken).filter_by(unit_id=unit)] == [
            "HR system"]
        assert [e.description for e in db.session.query(WebhookEndpoint)
                .filter_by(unit_id=unit)] == ["ERP hook"]


def test_a_nul_byte_in_a_rejection_reason_is_dropped_not_a_500(
    app: Flask, corp: dict[str, Any]
) -> None:
    from idp.purchases import budgets
    from idp.purchases.budgets import BudgetInput
    from tests.support.purchases import Shop, merchant, token

    web, unit = corp["web"], corp["unit"]
    eve = make_account(app, "eve@corp.example")
    give(app, eve, unit, ["employee"])
    with app.app_context():
        budgets.set_budget(Actor.account(corp["ann"]), unit, BudgetInput(
            scope="unit", subject=None, period="month", amount="100.00", currency="EUR",
            per_order="50.00", include_subunits=False))
    shop = Shop(app.test_client(), token(app, app.test_client(), merchant(app), eve, unit))
    answer = shop.buy("80.00", order_ref="PO-80").get_json()
    assert answer["status"] == "pending_approval"
    page = f"/admin/units/{unit}/approvals"
    action = f"{page}/{answer['approval']['id']}"
    resp = form_post(web, page, action, {"action": "reject", "reason": "too\x00 much"})
    assert resp.status_code == 303
    assert "PO-80" not in web.get(page).get_data(as_text=True)


def test_a_nul_byte_in_a_budgets_subject_is_refused_not_a_500(
    app: Flask, corp: dict[str, Any]
) -> None:
    web, unit = corp["web"], corp["unit"]
    page = f"/admin/units/{unit}/budgets"
    for subject in ("ann\x00@corp.example", "a\x00b"):
        resp = form_post(web, page, page, {"scope": "access", "subject": subject,
                                           "period": "month", "amount": "10", "currency": "EUR"})
        assert resp.status_code == 303
        assert "error-summary" in web.get(page).get_data(as_text=True)


def test_a_unit_id_with_a_nul_byte_is_404_not_500(app: Flask, corp: dict[str, Any]) -> None:
    web = corp["web"]
    for path in ("/admin/units/a%00b/", "/admin/units/a%00b/accesses",
                 "/admin/units/a%00b/webhooks"):
        assert web.get(path).status_code == 404, path
    token = csrf_token(web.get(f"/admin/units/{corp['unit']}/groups").get_data(as_text=True))
    resp = web.post("/admin/units/a%00b/groups", data={"csrf_token": token, "name": "x"})
    assert resp.status_code == 404


def test_a_nul_byte_in_the_sso_set_up_or_a_domain_is_dropped_not_a_500(
    app: Flask, corp: dict[str, Any]
) -> None:
    """Every console field goes through one cleaner (idp.console.accesses.clean)."""
    from idp.store.models import Connector

    web, unit = corp["web"], corp["unit"]
    new = f"/admin/units/{unit}/sso/new/oidc"
    resp = form_post(web, new, new, {"name": "Corp\x00 SSO", "issuer": "https://login.example\x00",
                                     "client_id": "cid\x00x", "client_secret": "s\x00ecret"})
    assert resp.status_code == 303
    with app.app_context():
        names = [c.name for c in db.session.query(Connector).filter_by(unit_id=unit)]
    assert names == ["Corp SSO"]
    domains = f"/admin/units/{unit}/domains"
    assert form_post(web, domains, domains, {"domain": "corp\x00.example"}).status_code in (
        200, 303)
