"""Issue 16 item 4: consent per item. On the consent page the employee may untick
any item the merchant does not require (its required ones are marked and
explained); the choice is stored per (account, merchant), left out of the ID token,
userinfo and the SAML assertion, remembered at the next sign-in (no consent page
again), and changeable per merchant on the dashboard, which also reaches the
merchant's live tokens. A merchant declares what it requires
(``required_claims``); without a declaration the subject and e-mail address are."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from idp.release import clients, consent, items
from idp.store.db import db
from idp.store.models import Consent, Grant
from tests.support import oidc, saml_flow
from tests.support.login import csrf_token, path_of
from tests.support.merchants import merchant_id
from tests.support.saml_sp import posted_form

SCOPE = "openid profile email phone wallet"


@pytest.fixture
def web(app: Flask, client: FlaskClient) -> Iterator[FlaskClient]:
    yield client


def _authorize(web: FlaskClient, rp: oidc.RP, scope: str = SCOPE) -> tuple[TestResponse, str]:
    verifier, challenge = oidc.pkce()
    params = oidc.auth_params(rp, scope=scope, code_challenge=challenge,
                              code_challenge_method="S256")
    return web.get("/authorize", query_string=params), verifier


def _tokens(web: FlaskClient, rp: oidc.RP, resp: TestResponse, verifier: str) -> dict[str, Any]:
    assert resp.status_code == 303 and resp.headers["Location"].startswith(rp.redirect_uri)
    code = oidc.query(resp)["code"]
    si = oidc.SignIn(code, "", "", verifier)
    out = oidc.exchange(web, rp, si)
    assert out.status_code == 200, out.get_data(as_text=True)
    tokens: dict[str, Any] = out.get_json()
    tokens["claims"] = oidc.verify_jwt(web, tokens["id_token"]).claims
    return tokens


def _consent_page(app: Flask, web: FlaskClient, resp: TestResponse) -> tuple[str, str]:
    assert oidc.is_login_redirect(app, resp)
    resp = web.get(resp.headers["Location"])
    assert resp.status_code == 303 and path_of(resp).endswith("/consent")
    page = resp.headers["Location"]
    return page, web.get(page).get_data(as_text=True)


def _boxes(html: str) -> dict[str, bool]:
    """The consent page's (or dashboard's) checkboxes: item -> ticked."""
    return {
        m.group(2): bool(m.group(3))
        for m in re.finditer(r'<input type="checkbox" id="([^"]+)" name="share" '
                             r'value="([^"]+)"( checked)?>', html)
    }


def _stored(app: Flask, account_id: str) -> Consent:
    with app.app_context():
        row = db.session.query(Consent).filter_by(account_id=account_id).one()
        db.session.expunge(row)
        return row


def _account(app: Flask) -> tuple[str, str]:
    ann = oidc.make_account(app, phone_number="+4930123456")
    unit = oidc.make_unit(app, ann, "Corp GmbH", fields=("ship_to", "po"),
                          facts={"cost_centre": "CC-1", "extra.ship_to": "Dock 4",
                                 "extra.po": "PO-9"})
    return ann, unit


def test_required_items_and_the_choice_rules() -> None:
    assert items.required(None) == {"sub", "email", "email_verified"}
    assert items.required(["phone_number", "org_name"]) == {
        "sub", "phone_number", "org_name", "org_id"}
    # the full name goes with given or family name; the company's id with its name
    assert items.withheld_after([], ["given_name", "phone_number"], ["phone_number"]) == [
        "given_name", "name"]
    assert items.withheld_after(["given_name", "name"], ["given_name"], ["given_name"]) == []
    assert items.withheld_after(["phone_number"], ["email"], []) == [
        "phone_number", "email", "email_verified"]
    assert items.withheld_after([], ["email"], [], needed=["email", "email_verified"]) == []
    released = {"sub": "x", "phone_number": "1", "wallet_fields": {"a": 1, "b": 2}}
    assert items.leave_out(released, ["sub", "wallet:a"]) == {
        "sub": "x", "phone_number": "1", "wallet_fields": {"b": 2}}
    assert items.leave_out(released, ["wallet:a", "wallet:b"]) == {
        "sub": "x", "phone_number": "1"}


def test_a_merchant_declares_its_required_claims(app: Flask) -> None:
    with app.app_context():
        with pytest.raises(clients.ClientRegistrationError):
            clients.register("Shop", [oidc.REDIRECT], required_claims=["shoe_size"], actor="test")
        with pytest.raises(clients.ClientRegistrationError):
            clients.register("Shop", [oidc.REDIRECT], required_claims="email", actor="test")
        client, _secret = clients.register("Shop", [oidc.REDIRECT],
                                           required_claims=["phone_number"], actor="test")
        assert client.required_claims == ["sub", "phone_number"]
        assert clients.describe(client)["required_claims"] == ["sub", "phone_number"]
        assert consent.required_items(client.merchant_id) == {"sub", "phone_number"}
        clients.update(client.client_id, required_claims=["email"], actor="test")
        assert consent.required_items(client.merchant_id) == {"sub", "email", "email_verified"}
        other, _ = clients.register("Other", [oidc.REDIRECT], actor="test")
        assert other.required_claims is None
        assert consent.required_items(other.merchant_id) == set(items.DEFAULT_REQUIRED)


def test_leaving_out_an_item_everywhere_remembered_and_changed_on_the_dashboard(
    app: Flask, web: FlaskClient
) -> None:
    ann, unit = _account(app)
    rp = oidc.register(app, name="Office Supplies Ltd")
    oidc.start_session(app, web, ann)
    resp, verifier = _authorize(web, rp)
    page, html = _consent_page(app, web, resp)
    # required ones marked and explained, the others ticked boxes; no internal ids
    assert "needed by Office Supplies Ltd to sign you in" in html
    assert re.search(r"E-mail address <span class=\"ug-required\">required</span>", html)
    boxes = _boxes(html)
    assert boxes == {"given_name": True, "family_name": True, "phone_number": True,
                     "cost_centre": True, "wallet:ship_to": True,
                     "wallet:po": True}
    assert unit not in html and "Company identifier" not in html
    shared = [k for k in boxes if k not in ("phone_number", "wallet:po")]
    resp = web.post(page, data={"csrf_token": csrf_token(html), "decision": "allow",
                                "choice": "1", "share": shared})
    tokens = _tokens(web, rp, resp, verifier)
    claims = tokens["claims"]
    assert "phone_number" not in claims and claims["given_name"] == "Ann"
    assert claims["email"] == "ann@corp.example" and claims["cost_centre"] == "CC-1"
    assert claims["wallet_fields"] == {"ship_to": "Dock 4"}
    info = oidc.userinfo(web, tokens["access_token"]).get_json()
    assert "phone_number" not in info and info["wallet_fields"] == {"ship_to": "Dock 4"}
    assert _stored(app, ann).withheld == ["phone_number", "wallet:po"]

    # remembered: the next sign-in answers at once, still without them
    resp, verifier = _authorize(web, rp)
    again = _tokens(web, rp, resp, verifier)
    assert "phone_number" not in again["claims"] and "po" not in again["claims"]["wallet_fields"]
    refreshed = oidc.refresh(web, rp, again["refresh_token"]).get_json()
    refreshed_claims = oidc.verify_jwt(web, refreshed["id_token"]).claims
    assert "phone_number" not in refreshed_claims

    # the dashboard shows the choice and changes it, for the live tokens too
    html = web.get("/account").get_data(as_text=True)
    row = re.findall(r'<tr class="ug-consent">(.*?)</tr>', html, re.S)[0]
    assert _boxes(row)["phone_number"] is False and _boxes(row)["given_name"] is True
    assert "E-mail address" in row and "required" in row and unit not in row
    shop = merchant_id(app, rp.client_id)
    all_boxes = list(_boxes(row))
    resp = web.post("/account/consents/choose", data={
        "csrf_token": csrf_token(html), "merchant_id": shop,
        "share": [k for k in all_boxes if k != "given_name"],  # email not posted: required
    })
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/account#consents")
    assert "Your choice was saved." in web.get("/account").get_data(as_text=True)
    assert _stored(app, ann).withheld == ["given_name", "name"]
    info = oidc.userinfo(web, again["access_token"]).get_json()
    assert info["phone_number"] == "+4930123456" and "given_name" not in info
    assert "name" not in info and info["email"] == "ann@corp.example"
    assert info["wallet_fields"] == {"ship_to": "Dock 4", "po": "PO-9"}
    with app.app_context():
        grants = db.session.query(Grant).filter_by(account_id=ann).all()
        assert grants and all(g.withheld == ["given_name", "name"] for g in grants)
    # a new authorization asking for more shows the page again with the choice kept
    resp, _verifier = _authorize(web, rp, SCOPE + " org")
    _page, html = _consent_page(app, web, resp)
    assert _boxes(html)["given_name"] is False and _boxes(html)["phone_number"] is True


def test_the_dashboard_choice_needs_csrf_a_session_and_the_own_consent(
    app: Flask, web: FlaskClient
) -> None:
    ann, _unit = _account(app)
    bob = oidc.make_account(app, "bob@corp.example")
    rp = oidc.register(app)
    shop = merchant_id(app, rp.client_id)
    with app.app_context():
        consent.grant(bob, shop, ["openid", "phone"], ["phone_number"])
    resp = web.post("/account/consents/choose", data={"merchant_id": shop})
    assert resp.status_code == 400  # no CSRF token
    oidc.start_session(app, web, ann)
    html = web.get("/account").get_data(as_text=True)
    resp = web.post("/account/consents/choose", data={
        "csrf_token": csrf_token(html), "merchant_id": shop, "share": []})
    assert resp.status_code == 303  # ann has no consent there: bob's stays as it is
    assert "There was no consent" in web.get("/account").get_data(as_text=True)
    assert _stored(app, bob).withheld == []


def test_a_form_without_the_choice_shares_everything(app: Flask, web: FlaskClient) -> None:
    ann, _unit = _account(app)
    rp = oidc.register(app)
    oidc.start_session(app, web, ann)
    resp, verifier = _authorize(web, rp)
    page, html = _consent_page(app, web, resp)
    resp = web.post(page, data={"csrf_token": csrf_token(html), "decision": "allow"})
    assert _tokens(web, rp, resp, verifier)["claims"]["phone_number"] == "+4930123456"
    assert _stored(app, ann).withheld == []


def test_saml_leaves_out_what_the_employee_left_out(app: Flask, web: FlaskClient) -> None:
    ann, _unit = _account(app)
    sp = saml_flow.make_sp(app, web)
    oidc.start_session(app, web, ann)
    resp, request_id = saml_flow.start(web, sp)
    page, html = _consent_page(app, web, resp)
    boxes = _boxes(html)
    assert "cost_centre" in boxes and "given_name" in boxes
    resp = web.post(page, data={"csrf_token": csrf_token(html), "decision": "allow",
                                "choice": "1",
                                "share": [k for k in boxes if k != "cost_centre"]})
    assert resp.status_code == 303
    target = resp.headers["Location"]
    answer = web.get(target) if not target.startswith("http") else resp
    action, fields = posted_form(answer)
    assert action == sp.acs_url
    attrs = sp.accept(fields, request_id).get_friendlyname_attributes()
    assert "costCentre" not in attrs and attrs["givenName"] == ["Ann"]
    assert attrs["mail"] == ["ann@corp.example"]
    # remembered: the next request is answered from the session, still without it
    resp, request_id = saml_flow.start(web, sp)
    attrs = sp.accept(posted_form(resp)[1], request_id).get_friendlyname_attributes()
    assert "costCentre" not in attrs and attrs["givenName"] == ["Ann"]


def test_apply_declares_and_exports_required_claims(app: Flask) -> None:
    from idp.config import apply as config_apply
    from idp.config import export

    document = """
version: 1
clients:
  - name: Office Supplies Shop
    redirect_uris: [https://shop.example/callback]
    required_claims: [email, phone_number]
"""
    with app.app_context():
        config_apply.apply(config_apply.parse(document))
        (client,) = [c for c in clients.list_all() if c.name == "Office Supplies Shop"]
        assert client.required_claims == ["sub", "email", "phone_number"]
        assert config_apply.apply(config_apply.parse(document)).changes == []  # idempotent
        (shown,) = export.export_config()["clients"]
        assert shown["required_claims"] == ["sub", "email", "phone_number"]
        with pytest.raises(config_apply.ApplyError) as err:
            config_apply.apply(config_apply.parse(document.replace("phone_number", "x")))
        assert "required_claims" in str(err.value)
