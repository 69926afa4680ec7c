"""The employee dashboard (``/account``): signing in with an e-mail code, the
sign-ins and consents it lists, withdrawing a consent (and the merchant asking
again), the profile form with fields HR owns, sign-out, and that a session only
ever sees and changes its own account."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from idp import audit
from idp.accounts import accesses
from idp.accounts import lifecycle as accounts
from idp.interaction import pending as interaction
from idp.mail.outbox import courier
from idp.release import clients, consent, signins
from idp.services import ephemeral
from idp.store.db import db
from idp.store.models import Account, AuditEvent, Consent, Session, SignIn
from tests.support.login import (
    csrf_token,
    path_of,
    sign_in_to_dashboard,
)
from tests.support.merchants import merchant_id
from tests.support.oidc import (
    REDIRECT,
    auth_params,
    is_login_redirect,
    make_account,
    make_unit,
    pkce,
    register,
    set_status,
)

ANN = "ann@corp.example"
BOB = "bob@corp.example"


@pytest.fixture
def web(app: Flask, client: FlaskClient) -> Iterator[FlaskClient]:
    yield client
    courier(app).drain()


def record_signin(app: Flask, account_id: str, client_id: str, released: list[str],
                  at: datetime, unit_id: str | None = None, protocol: str = "oidc") -> None:
    """A sign-in at the merchant of ``client_id`` (or entity ID) at time ``at``."""
    merchant = merchant_id(app, client_id)
    with app.app_context():
        row = signins.record(account_id, merchant, unit_id, protocol, released)
        row.at = at
        db.session.commit()


def post_on_dashboard(web: FlaskClient, action: str, data: dict[str, str]) -> TestResponse:
    token = csrf_token(web.get("/account").get_data(as_text=True))
    return web.post(action, data={"csrf_token": token, **data})


def consent_of(app: Flask, account_id: str, client_id: str) -> Consent | None:
    """The account's consent for the merchant of ``client_id``, or None."""
    merchant = merchant_id(app, client_id)
    with app.app_context():
        return db.session.scalars(select(Consent).where(
            Consent.account_id == account_id, Consent.merchant_id == merchant)).first()


def test_dashboard_sign_in_needs_a_fresh_code_and_asks_no_consent(
    app: Flask, web: FlaskClient
) -> None:
    ann = make_account(app, ANN)
    make_unit(app, ann, "Corp GmbH", roles=["buyer"])
    make_unit(app, ann, "Other AG", roles=["approver"])
    resp = web.get("/account")
    assert resp.status_code == 303
    ix_id = path_of(resp).split("/")[2]
    with app.test_request_context("/"):
        data = ephemeral().get(f"ix:{ix_id}")
    assert data is not None and data["protocol"] == "account" and data["scopes"] == []
    assert data["client_id"] == "unitgate-account"
    page = web.get(path_of(resp)).get_data(as_text=True)
    assert "Sign in to your account" in page  # the dashboard is no merchant
    assert "asks you to sign in" not in page and "Unitgate account asks" not in page
    # two companies, yet neither a unit choice nor a consent page on the way
    html = sign_in_to_dashboard(app, web).get_data(as_text=True)
    assert "Ann Example" in html and ANN in html
    assert "Corp GmbH" in html and "buyer" in html and "Other AG" in html and "approver" in html
    with app.app_context():  # the dashboard is no merchant: nothing consented
        assert db.session.scalars(select(Consent).where(Consent.account_id == ann)).all() == []
    # the page is the session's: a second visit needs no new code
    assert web.get("/account").status_code == 200


def test_trailing_slash_is_the_dashboard_too(web: FlaskClient) -> None:
    resp = web.get("/account/?page=2")
    assert resp.status_code == 308
    assert resp.headers["Location"].endswith("/account?page=2")


def test_resume_only_for_this_browsers_dashboard_interaction(
    app: Flask, web: FlaskClient
) -> None:
    assert web.get("/account/resume/unknown").status_code == 400
    make_account(app, ANN)
    resp = web.get("/account")
    ix_id = path_of(resp).split("/")[2]
    # not authenticated yet: never a dashboard
    assert web.get(f"/account/resume/{ix_id}").status_code == 400
    assert web.get("/account").status_code == 303


def test_signins_newest_first_with_merchant_protocol_and_released_data(
    app: Flask, web: FlaskClient
) -> None:
    ann = make_account(app, ANN)
    unit = make_unit(app, ann, "Corp GmbH")
    rp = register(app, name="Office Supplies Ltd")
    gone = register(app, name="Gone Travel")
    now = datetime.now(UTC)
    record_signin(app, ann, rp.client_id, ["sub", "email"], now - timedelta(days=2), unit)
    record_signin(app, ann, rp.client_id, ["given_name"], now - timedelta(hours=1))
    record_signin(app, ann, gone.client_id, ["email"], now - timedelta(days=1), protocol="saml")
    with app.app_context():  # its merchant is retired; the sign-in stays, with its name
        assert clients.delete(gone.client_id, actor="test")
    html = sign_in_to_dashboard(app, web).get_data(as_text=True)
    rows = re.findall(r'<tr class="ug-signin">(.*?)</tr>', html, re.S)
    assert len(rows) == 3
    assert "Office Supplies Ltd" in rows[0] and "Given name" in rows[0]
    assert "SAML" in rows[1] and "Gone Travel (no longer connected)" in rows[1]
    assert "OpenID Connect" in rows[2] and "E-mail address" in rows[2]
    assert "for Corp GmbH" in rows[2]
    assert "Older sign-ins" not in html


def test_signins_are_paginated_50_per_page(app: Flask, web: FlaskClient) -> None:
    ann = make_account(app, ANN)
    rp = register(app, name="Shop")
    shop = merchant_id(app, rp.client_id)
    start = datetime.now(UTC) - timedelta(days=10)
    with app.app_context():
        for i in range(51):
            db.session.add(SignIn(account_id=ann, merchant_id=shop, protocol="oidc",
                                  released=[f"claim{i}"], at=start + timedelta(minutes=i)))
        db.session.commit()
    html = sign_in_to_dashboard(app, web).get_data(as_text=True)
    rows = re.findall(r'<tr class="ug-signin">(.*?)</tr>', html, re.S)
    assert len(rows) == 50 and "claim50" in rows[0] and "claim1" in rows[-1]
    assert "Older sign-ins" in html and "Newer sign-ins" not in html
    second = web.get("/account?page=2").get_data(as_text=True)
    rows = re.findall(r'<tr class="ug-signin">(.*?)</tr>', second, re.S)
    assert len(rows) == 1 and "claim0" in rows[0] and "Newer sign-ins" in second
    for junk in ("abc", "-1", "0", "99999999999", "2.5"):
        assert web.get("/account", query_string={"page": junk}).status_code == 200


def test_withdrawn_consent_makes_the_merchant_ask_again(app: Flask, web: FlaskClient) -> None:
    ann = make_account(app, ANN)
    rp = register(app, name="Office Supplies Ltd")
    sign_in_to_dashboard(app, web)

    def authorize() -> TestResponse:
        _verifier, challenge = pkce()
        params = auth_params(rp, code_challenge=challenge, code_challenge_method="S256")
        return web.get("/authorize", query_string=params)

    # first visit at the merchant: the session is reused, consent is asked
    resp = authorize()
    assert is_login_redirect(app, resp)
    resp = web.get(resp.headers["Location"])
    assert resp.status_code == 303 and path_of(resp).endswith("/consent")
    consent_page = resp.headers["Location"]
    html = web.get(consent_page).get_data(as_text=True)
    resp = web.post(consent_page, data={"csrf_token": csrf_token(html), "decision": "allow"})
    # the consent POST itself answers the merchant (no hop through /authorize/resume)
    assert resp.status_code == 303 and resp.headers["Location"].startswith(REDIRECT)
    # covered now: a code at once
    resp = authorize()
    assert resp.status_code == 303 and resp.headers["Location"].startswith(REDIRECT)

    html = web.get("/account").get_data(as_text=True)
    consents = re.findall(r'<tr class="ug-consent">(.*?)</tr>', html, re.S)
    assert len(consents) == 1 and "Office Supplies Ltd" in consents[0]
    assert "E-mail address" in consents[0] and "Withdraw" in consents[0]
    assert "pseudonymous" not in consents[0]
    signins = re.findall(r'<tr class="ug-signin">(.*?)</tr>', html, re.S)
    assert len(signins) == 2 and all("Office Supplies Ltd" in row for row in signins)

    shop = merchant_id(app, rp.client_id)
    resp = post_on_dashboard(web, "/account/consents/withdraw", {"merchant_id": shop})
    assert resp.status_code == 303 and path_of(resp) == "/account"
    assert consent_of(app, ann, rp.client_id) is None
    with app.app_context():
        events = [e for e in audit.since(0, audit.MAX_PAGE)[0] if e.action == "consent.revoke"]
        assert [(e.actor_kind, e.actor_id, e.unit_id, e.target) for e in events] == [
            ("account", ann, None, shop)]
    html = web.get("/account").get_data(as_text=True)
    assert "Consent withdrawn" in html and 'class="ug-consent"' not in html
    # the next sign-in at that merchant asks again
    resp = authorize()
    assert is_login_redirect(app, resp)
    resp = web.get(resp.headers["Location"])
    assert resp.status_code == 303 and path_of(resp).endswith("/consent")


def test_withdraw_needs_csrf_and_a_session(app: Flask, web: FlaskClient) -> None:
    ann = make_account(app, ANN)
    rp = register(app, name="Shop")
    shop = merchant_id(app, rp.client_id)
    with app.app_context():
        consent.grant(ann, shop, ["openid", "email"], ["email"])
    resp = web.post("/account/consents/withdraw", data={"merchant_id": shop})
    assert resp.status_code == 400
    sign_in_to_dashboard(app, web)
    resp = web.post("/account/consents/withdraw", data={"merchant_id": shop})
    assert resp.status_code == 400
    assert consent_of(app, ann, rp.client_id) is not None
    for junk in ("", "x" * 5000, "\x00", rp.client_id, shop + "'"):
        resp = post_on_dashboard(web, "/account/consents/withdraw", {"merchant_id": junk})
        assert resp.status_code == 303
    assert consent_of(app, ann, rp.client_id) is not None


def test_a_session_sees_and_changes_only_its_own_account(app: Flask, web: FlaskClient) -> None:
    ann = make_account(app, ANN)
    bob = make_account(app, BOB, given_name="Bob", family_name="Other")
    ann_shop = register(app, name="Ann's Shop")
    bob_shop = register(app, name="Bob's Shop")
    now = datetime.now(UTC)
    record_signin(app, bob, bob_shop.client_id, ["email"], now)
    ann_merchant = merchant_id(app, ann_shop.client_id)
    bob_merchant = merchant_id(app, bob_shop.client_id)
    with app.app_context():
        consent.grant(bob, ann_merchant, ["openid", "email"], ["email"])
        consent.grant(bob, bob_merchant, ["openid", "email"], ["email"])
        consent.grant(ann, ann_merchant, ["openid", "email"], ["email"])
    html = sign_in_to_dashboard(app, web, ANN).get_data(as_text=True)
    assert BOB not in html and "Bob's Shop" not in html and "Bob" not in html
    assert len(re.findall(r'<tr class="ug-consent">', html)) == 1
    # withdrawing names a merchant, never an account: only Ann's consent goes
    post_on_dashboard(web, "/account/consents/withdraw", {"merchant_id": bob_merchant})
    post_on_dashboard(web, "/account/consents/withdraw", {"merchant_id": ann_merchant})
    assert consent_of(app, ann, ann_shop.client_id) is None
    assert consent_of(app, bob, ann_shop.client_id) is not None
    assert consent_of(app, bob, bob_shop.client_id) is not None
    # a profile post carrying another account's id changes only Ann
    resp = post_on_dashboard(web, "/account/profile", {
        "given_name": "Annette", "family_name": "Example", "account_id": bob, "id": bob})
    assert resp.status_code == 303
    with app.app_context():
        assert db.session.get(Account, ann).given_name == "Annette"  # type: ignore[union-attr]
        assert db.session.get(Account, bob).given_name == "Bob"  # type: ignore[union-attr]


def test_profile_edit_with_validation_and_fields_hr_owns(app: Flask, web: FlaskClient) -> None:
    ann = make_account(app, ANN)
    unit = make_unit(app, ann, "Corp GmbH", fields=("project",),
                     facts={"department": "Purchasing", "personnel_number": "P-17"},
                     owners={"department": "scim", "personnel_number": "ldap"})
    html = sign_in_to_dashboard(app, web).get_data(as_text=True)
    assert 'name="given_name"' in html and 'name="phone_number"' in html
    assert 'name="extra__project"' in html and '<label for="extra__project">' in html
    assert 'name="department"' not in html and 'name="personnel_number"' not in html
    assert "Purchasing" in html and "Managed by your company&#39;s HR system" in html
    assert "P-17" in html and "Managed by your company&#39;s directory" in html

    # invalid: a required field emptied; nothing is saved, errors on the form
    resp = post_on_dashboard(web, "/account/profile", {
        "given_name": " ", "family_name": "Example", "phone_number": "+49 30 1234"})
    assert resp.status_code == 303 and urlsplit(resp.headers["Location"]).fragment == "profile"
    html = web.get("/account").get_data(as_text=True)
    assert 'id="given_name-error"' in html and "This field is required." in html
    assert 'value="+49 30 1234"' in html
    with app.app_context():
        row = db.session.get(Account, ann)
        assert row is not None and row.given_name == "Ann" and row.phone_number is None

    # valid: saved, audited as the employee; a read-only field in the post is ignored
    resp = post_on_dashboard(web, "/account/profile", {
        "given_name": "Annette", "family_name": "Example", "phone_number": "+49 30 1234",
        "extra__project": "Apollo", "department": "Hacked", "cost_centre": "",
        "personnel_number": ""})
    assert resp.status_code == 303
    html = web.get("/account").get_data(as_text=True)
    assert "Your profile was saved." in html and "Annette Example" in html
    with app.app_context():
        row = db.session.get(Account, ann)
        assert row is not None
        assert (row.given_name, row.phone_number) == ("Annette", "+49 30 1234")
        access = accesses.find(ann, unit)  # the unit's facts are its access's
        assert access is not None and access.extra.get("project") == "Apollo"
        assert access.department == "Purchasing" and access.personnel_number == "P-17"
        event = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "account.profile_edited")).one()
        assert event.actor == f"account:{ann}" and event.target == ann
    # too long and control characters
    resp = post_on_dashboard(web, "/account/profile", {
        "given_name": "A" * 300, "family_name": "Ex\u202eample"})
    html = web.get("/account").get_data(as_text=True)
    assert "This is too long." in html and "characters that are not allowed" in html


def test_each_company_shows_and_edits_its_own_employer_facts(
    app: Flask, web: FlaskClient
) -> None:
    """A person in two companies has a cost centre in each; the dashboard shows the
    facts of one company at a time and a save changes only that company's."""
    ann = make_account(app, ANN)
    corp = make_unit(app, ann, "Corp GmbH", facts={"cost_centre": "CC-CORP"})
    other = make_unit(app, ann, "Other AG", facts={"cost_centre": "CC-OTHER"})
    sign_in_to_dashboard(app, web)
    html = web.get(f"/account?unit={other}").get_data(as_text=True)
    assert 'value="CC-OTHER"' in html and "CC-CORP" not in html
    assert f'name="unit_id" value="{other}"' in html
    html = web.get(f"/account?unit={corp}").get_data(as_text=True)
    assert 'value="CC-CORP"' in html and "CC-OTHER" not in html
    resp = post_on_dashboard(web, "/account/profile", {
        "given_name": "Ann", "family_name": "Example", "cost_centre": "CC-NEW",
        "unit_id": other})
    assert resp.status_code == 303
    with app.app_context():
        assert accesses.find(ann, other).cost_centre == "CC-NEW"  # type: ignore[union-attr]
        assert accesses.find(ann, corp).cost_centre == "CC-CORP"  # type: ignore[union-attr]


def test_a_posted_unit_id_reaches_no_other_companys_or_suspended_access(
    app: Flask, web: FlaskClient
) -> None:
    """Ann tampers with the form's unit_id: another company's id (Bob's, where she has
    no access) and her own suspended company's id. Neither access changes: a save
    writes only to one of her own granting accesses."""
    from idp.store.unit_of_work import atomic

    ann = make_account(app, ANN)
    bob = make_account(app, "bob@globex.example")
    corp = make_unit(app, ann, "Corp GmbH", facts={"cost_centre": "CC-CORP"})
    globex = make_unit(app, bob, "Globex AG", facts={"cost_centre": "CC-BOB"})
    paused = make_unit(app, ann, "Paused KG", facts={"cost_centre": "CC-PAUSED"})
    with app.app_context(), atomic():
        assert accesses.suspend(ann, paused, "test")
    sign_in_to_dashboard(app, web)
    for unit_id in (globex, paused):
        resp = post_on_dashboard(web, "/account/profile", {
            "given_name": "Ann", "family_name": "Example", "cost_centre": "CC-EVIL",
            "unit_id": unit_id})
        assert resp.status_code == 303
    with app.app_context():
        assert accesses.find(bob, globex).cost_centre == "CC-BOB"  # type: ignore[union-attr]
        assert accesses.find(ann, paused).cost_centre == "CC-PAUSED"  # type: ignore[union-attr]
        assert accesses.find(ann, globex) is None
        # the save went to her only granting access, the one the page showed
        assert accesses.find(ann, corp).cost_centre == "CC-EVIL"  # type: ignore[union-attr]


def test_profile_field_taken_over_by_hr_meanwhile_is_not_overwritten(
    app: Flask, web: FlaskClient
) -> None:
    ann = make_account(app, ANN)
    sign_in_to_dashboard(app, web)
    token = csrf_token(web.get("/account").get_data(as_text=True))
    with app.app_context():  # HR takes the field between the page and the post
        row = db.session.get(Account, ann)
        assert row is not None
        row.family_name = "Beispiel"
        row.field_owners = {"family_name": "scim"}
        db.session.commit()
    resp = web.post("/account/profile", data={
        "csrf_token": token, "given_name": "Ann", "family_name": "Mine"})
    assert resp.status_code == 303
    with app.app_context():
        assert db.session.get(Account, ann).family_name == "Beispiel"  # type: ignore[union-attr]
    html = web.get("/account").get_data(as_text=True)
    assert 'name="family_name"' not in html and "Beispiel" in html


@pytest.mark.parametrize("how", ["block", "deactivate"])
def test_blocked_or_deactivated_account_loses_the_dashboard(
    app: Flask, web: FlaskClient, how: str
) -> None:
    ann = make_account(app, ANN)
    sign_in_to_dashboard(app, web)
    if how == "block":
        with app.app_context():
            assert accounts.block(ANN)
            assert db.session.scalars(select(Session).where(Session.account_id == ann)).all() == []
    else:
        set_status(app, ann, "inactive")
    resp = web.get("/account")
    assert resp.status_code == 303 and is_login_redirect(app, resp)
    with app.app_context():
        assert db.session.scalars(select(Session).where(Session.account_id == ann)).all() == []


def test_a_session_that_owes_a_totp_code_loses_the_dashboard(
    app: Flask, web: FlaskClient
) -> None:
    """The same rule as at /authorize and SAML SSO (idp.interaction.signed_in): when a unit of the
    account starts requiring TOTP, an e-mail-only session no longer counts."""
    from idp.factors import totp
    from tests.support.oidc import make_unit

    ann = make_account(app, ANN)
    unit_id = make_unit(app, ann)
    sign_in_to_dashboard(app, web)
    with app.app_context():
        totp.set_unit_policy(unit_id, True, "test")
    resp = web.get("/account")
    assert resp.status_code == 303 and is_login_redirect(app, resp)
    with app.app_context():
        assert db.session.scalars(select(Session).where(Session.account_id == ann)).all() == []


def test_sign_out_ends_the_session(app: Flask, web: FlaskClient) -> None:
    ann = make_account(app, ANN)
    sign_in_to_dashboard(app, web)
    assert web.post("/account/sign-out").status_code == 400  # no CSRF token
    assert web.get("/account").status_code == 200
    resp = post_on_dashboard(web, "/account/sign-out", {})
    assert resp.status_code == 303 and path_of(resp) == "/account/signed-out"
    assert "You are signed out" in web.get(path_of(resp)).get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Session).where(Session.account_id == ann)).all() == []
    resp = web.get("/account")
    assert is_login_redirect(app, resp)


def test_pages_carry_csp_lang_and_labels_in_german(app: Flask, web: FlaskClient) -> None:
    ann = make_account(app, ANN)
    shop = merchant_id(app, register(app, name="Shop").client_id)
    with app.app_context():
        consent.grant(ann, shop, ["openid", "email"], ["email"])
    sign_in_to_dashboard(app, web)
    resp = web.get("/account?lang=de")
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and resp.headers["X-Frame-Options"] == "DENY"
    html = resp.get_data(as_text=True)
    assert '<html lang="de">' in html
    assert "Ihr Unitgate-Konto" in html and "Ihre Anmeldungen bei Händlern" in html
    assert "Widerrufen" in html and "Abmelden" in html and "Vorname" in html
    assert "Your sign-ins at merchants" not in html
    assert html.count("<h1>") == 1 and '<label for="given_name">' in html
    english = web.get("/account?lang=en").get_data(as_text=True)
    assert "Your sign-ins at merchants" in english and "Merchants you share data with" in english
    signed_out = web.get("/account/signed-out")
    assert "frame-ancestors 'none'" in signed_out.headers["Content-Security-Policy"]


def test_login_page_names_the_dashboard_in_german(app: Flask, web: FlaskClient) -> None:
    resp = web.get("/account", headers={"Accept-Language": "de"})
    ix_id = path_of(resp).split("/")[2]
    with app.test_request_context("/"):
        data = ephemeral().get(f"ix:{ix_id}")
        assert data is not None
        ix = interaction.Interaction(**data)
    assert ix.client_name == "Unitgate-Konto"
