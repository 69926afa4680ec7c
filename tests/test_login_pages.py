"""The login interaction pages: accessible markup, CSRF on every form, 303 after every
POST, the expired-link page, the wallet profile, the unit choice and consent."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.accounts import accesses
from idp.mail.outbox import courier
from idp.release import consent
from idp.store.db import db
from idp.store.models import Access, Account, AuditEvent, Consent, Unit, UnitProfileField
from idp.store.unit_of_work import atomic
from tests.support.login import (
    add_protocol_stand_in,
    code_from_outbox,
    csrf_token,
    path_of,
    stand_in_merchant,
    start,
    submit_code,
    submit_email,
)

EMAIL = "ann@corp.example"


@pytest.fixture
def web(app: Flask, client: FlaskClient) -> Iterator[FlaskClient]:
    add_protocol_stand_in(app)
    yield client
    courier(app).drain()


def make_account(app: Flask, email: str = EMAIL, **fields: Any) -> str:
    with app.app_context():
        values: dict[str, Any] = {"email": email, "email_verified": True,
                                  "given_name": "Ann", "family_name": "Example"}
        values.update(fields)
        account = Account(**values)
        db.session.add(account)
        db.session.commit()
        return account.id


def make_unit(app: Flask, account_id: str, name: str, roles: list[str] | None = None,
              fields: tuple[tuple[str, str, bool], ...] = (),
              facts: dict[str, str] | None = None, owners: str | None = None) -> str:
    """A unit with its own ``fields`` and the account's access to it holding
    ``facts`` (set by ``owners``, the employee by default) through ``idp.accounts.accesses``."""
    with app.app_context():
        unit = Unit(name=name, slug=re.sub(r"\W+", "-", name.lower()))
        db.session.add(unit)
        db.session.flush()
        for i, (fname, label, required) in enumerate(fields):
            db.session.add(UnitProfileField(unit_id=unit.id, name=fname, label=label,
                                            required=required, position=i))
        with atomic():
            row = accesses.create(account_id, unit.id, roles or [], "test", event=None)
            accesses.set_facts(row, dict(facts or {}), owners or "employee")
        return unit.id


def access_of(app: Flask, account_id: str, unit_id: str | None = None) -> Access:
    """The account's access to ``unit_id`` (or its only one), read through the service."""
    with app.app_context():
        rows = accesses.of_account(account_id)
        found = next(a for a in rows if unit_id in (None, a.unit_id))
        db.session.expunge(found)
        return found


def authenticate(app: Flask, web: FlaskClient, email: str = EMAIL,
                 **params: str) -> tuple[str, Any]:
    """Start an interaction and redeem a code; (login path, the code POST response)."""
    login = start(web, **params)
    submit_email(web, login, email)
    return login, submit_code(web, login, code_from_outbox(app, email))


def post(web: FlaskClient, page: str, action: str, data: dict[str, str]) -> Any:
    html = web.get(page).get_data(as_text=True)
    return web.post(action, data={"csrf_token": csrf_token(html), **data})


def resumed(web: FlaskClient, resp: Any) -> dict[str, Any]:
    assert resp.status_code == 303 and path_of(resp).startswith("/_test/resume/")
    return web.get(resp.headers["Location"]).get_json()  # type: ignore[no-any-return]


# --- markup and headers ------------------------------------------------------------

def test_email_page_markup(web: FlaskClient) -> None:
    login = start(web, login_hint="ann@corp.example")
    resp = web.get(login)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert re.search(r'<html lang="en">', html)
    field = re.search(r"<input id=\"email\"[^>]*>", html, re.S)
    assert field
    tag = field.group(0)
    assert 'type="email"' in tag and 'autocomplete="username webauthn"' in tag
    assert 'value="ann@corp.example"' in tag and "required" in tag
    assert '<label for="email">' in html
    assert 'name="csrf_token"' in html
    assert f'action="{login}/email"' in html
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Cache-Control"] == "no-store"


def test_code_page_markup(app: Flask, web: FlaskClient) -> None:
    login = start(web)
    submit_email(web, login, EMAIL)
    html = web.get(login + "/code").get_data(as_text=True)
    tag = re.search(r"<input id=\"code\"[^>]*>", html, re.S)
    assert tag
    assert 'autocomplete="one-time-code"' in tag.group(0)
    assert 'inputmode="numeric"' in tag.group(0)
    assert 'aria-describedby="code-hint"' in tag.group(0)
    assert '<label for="code">' in html and EMAIL in html and "10 minutes" in html
    assert html.count('name="csrf_token"') == 2  # the code form and the resend form


def test_errors_are_linked_to_their_field(web: FlaskClient) -> None:
    login = start(web)
    submit_email(web, login, "not-an-address")
    html = web.get(login).get_data(as_text=True)
    tag = re.search(r"<input id=\"email\"[^>]*>", html, re.S)
    assert tag and 'aria-invalid="true"' in tag.group(0)
    assert 'aria-describedby="email-hint email-error"' in tag.group(0)
    assert re.search(r'<p id="email-error" class="ug-error" role="alert">', html)
    assert 'value="not-an-address"' in tag.group(0)  # what was typed is kept
    # shown once: a reload no longer shows the error
    assert "email-error" not in web.get(login).get_data(as_text=True)


@pytest.mark.parametrize("suffix", ["", "/code", "/profile", "/unit", "/consent"])
def test_unknown_or_expired_interaction_is_a_clear_400(web: FlaskClient, suffix: str) -> None:
    resp = web.get(f"/interaction/no-such-interaction{suffix}")
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert "sign-in link has expired" in html and "go back to the shop" in html


def test_finished_interaction_cannot_be_replayed(app: Flask, web: FlaskClient) -> None:
    make_account(app)
    login, resp = authenticate(app, web)
    resumed(web, post(web, resp.headers["Location"], login + "/consent", {"decision": "allow"}))
    # Not resumed again: the back button finds "you are signed in", no form to re-post.
    for page in (login, login + "/consent", login + "/code"):
        again = web.get(page)
        html = again.get_data(as_text=True)
        assert again.status_code == 200 and "You are signed in" in html
        assert "Office Supplies Ltd" in html and "<form" not in html


# --- CSRF and 303 --------------------------------------------------------------------

@pytest.mark.parametrize("action", ["/email", "/code", "/resend", "/profile", "/unit",
                                    "/consent"])
def test_every_post_requires_the_csrf_token(web: FlaskClient, action: str) -> None:
    login = start(web)
    resp = web.post(login + action, data={"email": EMAIL, "code": "123456",
                                          "decision": "allow"})
    assert resp.status_code == 400
    assert "CSRF" in resp.get_data(as_text=True)
    forged = web.post(login + action, data={"csrf_token": "forged", "email": EMAIL})
    assert forged.status_code == 400


def test_every_post_answers_303(app: Flask, web: FlaskClient) -> None:
    account_id = make_account(app, "multi@corp.example")
    make_unit(app, account_id, "Alpha GmbH")
    make_unit(app, account_id, "Beta AG")
    statuses: list[int] = []
    login = start(web)
    statuses.append(submit_email(web, login, "bad").status_code)
    statuses.append(submit_email(web, login, "multi@corp.example").status_code)
    statuses.append(post(web, login + "/code", login + "/resend", {}).status_code)
    statuses.append(submit_code(web, login, "x").status_code)
    resp = submit_code(web, login, code_from_outbox(app, "multi@corp.example"))
    statuses.append(resp.status_code)
    assert path_of(resp) == login + "/unit"
    statuses.append(post(web, login + "/unit", login + "/unit", {"unit_id": "nope"}).status_code)
    with app.app_context():
        beta = db.session.scalars(select(Unit.id).where(Unit.name == "Beta AG")).one()
    statuses.append(post(web, login + "/unit", login + "/unit", {"unit_id": beta}).status_code)
    resp = post(web, login + "/consent", login + "/consent", {"decision": "allow"})
    statuses.append(resp.status_code)
    assert statuses == [303] * len(statuses)
    assert resumed(web, resp)["unit_id"] == beta


# --- wallet --------------------------------------------------------------------------

def test_first_sign_in_creates_the_wallet(app: Flask, web: FlaskClient) -> None:
    login, resp = authenticate(app, web, "new@corp.example")
    assert path_of(resp) == login + "/profile"
    html = web.get(login + "/profile").get_data(as_text=True)
    assert "Create your corporate wallet" in html and "new@corp.example" in html
    assert 'autocomplete="given-name"' in html and 'autocomplete="family-name"' in html
    assert 'name="cost_centre"' not in html  # no unit joined: no employer to keep it for
    resp = post(web, login + "/profile", login + "/profile", {
        "given_name": "  Nina ", "family_name": "Neu", "cost_centre": "CC-7",
        "personnel_number": ""})
    assert resp.status_code == 303 and path_of(resp) == login + "/consent"
    with app.app_context():
        account = db.session.scalars(select(Account)).one()
        assert account.email == "new@corp.example" and account.email_verified is True
        assert (account.given_name, account.family_name) == ("Nina", "Neu")
        assert accesses.of_account(account.id) == []
        assert account.locale == "en"
        assert "account.create" in set(db.session.scalars(select(AuditEvent.action)))
    assert web.get("/_test/session").get_json()["account_id"] == account.id


@pytest.mark.parametrize("field,value,error", [
    ("given_name", "   ", "This field is required."),
    ("family_name", "x" * 201, "This is too long."),
    ("given_name", "Ann\u200b", "characters that are not allowed"),
    ("family_name", "Ex\x00ample", "characters that are not allowed"),
])
def test_profile_is_validated_on_the_server(app: Flask, web: FlaskClient, field: str,
                                            value: str, error: str) -> None:
    login, _ = authenticate(app, web, "new@corp.example")
    data = {"given_name": "Nina", "family_name": "Neu", field: value}
    resp = post(web, login + "/profile", login + "/profile", data)
    assert resp.status_code == 303 and path_of(resp) == login + "/profile"
    html = web.get(login + "/profile").get_data(as_text=True)
    assert error in html and f'id="{field}-error"' in html
    with app.app_context():
        assert db.session.scalars(select(Account)).first() is None
    # the proof survives a failed attempt: a corrected form still creates the wallet
    resp = post(web, login + "/profile", login + "/profile",
                {"given_name": "Nina", "family_name": "Neu"})
    assert path_of(resp) == login + "/consent"


def test_huge_or_odd_form_input_never_500s(app: Flask, web: FlaskClient) -> None:
    login, _ = authenticate(app, web, "new@corp.example")
    html = web.get(login + "/profile").get_data(as_text=True)
    resp = web.post(login + "/profile", data={
        "csrf_token": csrf_token(html), "given_name": "x" * 200_000,
        "family_name": ["a", "b"], "extra__nope": "y"})
    assert resp.status_code == 303


def test_required_unit_fields_complete_an_existing_wallet(app: Flask, web: FlaskClient) -> None:
    account_id = make_account(app)
    make_unit(app, account_id, "Corp GmbH", fields=(("plant", "Plant", True),
                                                    ("desk", "Desk", False)))
    login, resp = authenticate(app, web)
    assert path_of(resp) == login + "/profile"
    html = web.get(login + "/profile").get_data(as_text=True)
    assert "Complete your corporate wallet" in html
    assert '<label for="extra__plant">Plant</label>' in html
    assert 'value="Ann"' in html  # known values prefilled
    resp = post(web, login + "/profile", login + "/profile",
                {"given_name": "Ann", "family_name": "Example", "extra__plant": "Berlin",
                 "cost_centre": "x" * 101})
    assert path_of(resp) == login + "/profile"
    assert "This is too long." in web.get(login + "/profile").get_data(as_text=True)
    resp = post(web, login + "/profile", login + "/profile",
                {"given_name": "Ann", "family_name": "Example", "extra__plant": "Berlin",
                 "cost_centre": "CC-7"})
    assert path_of(resp) == login + "/consent"
    access = access_of(app, account_id)  # the facts are the unit's access's
    assert access.extra == {"plant": "Berlin"} and access.cost_centre == "CC-7"


def test_wallet_completion_never_overwrites_fields_hr_owns(app: Flask, web: FlaskClient) -> None:
    """SCIM/LDAP-owned fields keep HR's value even when the profile form sends others."""
    account_id = make_account(app, family_name="FromHR", field_owners={"family_name": "scim"})
    make_unit(app, account_id, "Corp GmbH", fields=(("plant", "Plant", True),
                                                    ("desk", "Desk", True)),
              facts={"extra.plant": "Hamburg"}, owners="ldap")
    login, resp = authenticate(app, web)
    assert path_of(resp) == login + "/profile"
    resp = post(web, login + "/profile", login + "/profile",
                {"given_name": "Annie", "family_name": "Forged", "extra__plant": "Forged",
                 "extra__desk": "D-12"})
    assert path_of(resp) == login + "/consent"
    with app.app_context():
        account = db.session.get(Account, account_id)
        assert account is not None
        assert account.given_name == "Annie"
        assert account.family_name == "FromHR"
    access = access_of(app, account_id)
    assert access.extra["plant"] == "Hamburg"
    assert access.extra["desk"] == "D-12"


# --- unit choice and consent ---------------------------------------------------------

def test_unit_choice_only_offers_own_units(app: Flask, web: FlaskClient) -> None:
    account_id = make_account(app)
    alpha = make_unit(app, account_id, "Alpha GmbH", roles=["buyer"])
    make_unit(app, account_id, "Beta AG")
    other = make_unit(app, make_account(app, "bob@corp.example"), "Gamma KG")
    login, resp = authenticate(app, web, scope="openid org")
    assert path_of(resp) == login + "/unit"
    html = web.get(login + "/unit").get_data(as_text=True)
    assert "Alpha GmbH" in html and "Beta AG" in html and "Gamma KG" not in html
    resp = post(web, login + "/unit", login + "/unit", {"unit_id": other})
    assert path_of(resp) == login + "/unit"
    assert "Choose one of your companies" in web.get(login + "/unit").get_data(as_text=True)
    resp = post(web, login + "/unit", login + "/unit", {"unit_id": alpha})
    assert path_of(resp) == login + "/consent"
    html = web.get(login + "/consent").get_data(as_text=True)
    assert "Alpha GmbH" in html and "buyer" in html and "Beta AG" not in html


def test_single_unit_is_chosen_without_asking(app: Flask, web: FlaskClient) -> None:
    account_id = make_account(app)
    unit_id = make_unit(app, account_id, "Solo GmbH")
    login, resp = authenticate(app, web)
    assert path_of(resp) == login + "/consent"
    state = resumed(web, post(web, login + "/consent", login + "/consent",
                              {"decision": "allow"}))
    assert state["unit_id"] == unit_id and state["consented"] is True


def consent_sections(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-scope="([a-z_]+)">(.*?)</section>', html, re.S))


def test_consent_lists_exactly_what_is_released(app: Flask, web: FlaskClient) -> None:
    account_id = make_account(app, phone_number=None)
    make_unit(app, account_id, "Corp GmbH", fields=(("plant", "Plant", False),),
              facts={"cost_centre": "CC-42", "extra.plant": "Berlin"})
    login, _ = authenticate(app, web, scope="openid email wallet",
                               client_name="Office Supplies Ltd")
    html = web.get(login + "/consent").get_data(as_text=True)
    assert "Share your details with Office Supplies Ltd?" in html
    sections = consent_sections(html)
    assert list(sections) == ["openid", "email", "wallet"]
    assert EMAIL in sections["email"]
    assert "CC-42" in sections["wallet"] and "Plant" in sections["wallet"]
    assert "Berlin" in sections["wallet"]
    assert "Personnel number" not in sections["wallet"]  # no value: not released
    assert "Ann" not in html  # no profile scope: the name is not released


def test_consent_is_recorded_and_not_asked_again(app: Flask, web: FlaskClient) -> None:
    account_id = make_account(app)
    login, _ = authenticate(app, web, scope="openid email", client_id="shop-9")
    state = resumed(web, post(web, login + "/consent", login + "/consent",
                              {"decision": "allow"}))
    assert state["consented"] is True and state["finished"] is True
    with app.app_context():
        shop = stand_in_merchant("shop-9")
        row = db.session.scalars(select(Consent)).one()
        assert (row.account_id, row.merchant_id) == (account_id, shop)
        assert set(row.scopes) == {"openid", "email"}
        assert {"sub", "email", "email_verified"} <= set(row.claims)
        assert consent.granted_scopes(account_id, shop) == {"openid", "email"}
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "consent.grant")).one()
        assert event.target == shop and event.request_id
    # same request again: straight back to the merchant
    login, resp = authenticate(app, web, scope="openid email", client_id="shop-9",
                               prompt="login")
    assert resumed(web, resp)["consented"] is True
    # asking for more: asked again
    login, resp = authenticate(app, web, scope="openid email profile", client_id="shop-9",
                               prompt="login")
    assert path_of(resp) == login + "/consent"
    assert list(consent_sections(web.get(login + "/consent").get_data(as_text=True))) == [
        "openid", "profile", "email"]


def test_prompt_consent_asks_even_when_covered(app: Flask, web: FlaskClient) -> None:
    account_id = make_account(app)
    with app.app_context():
        consent.grant(account_id, stand_in_merchant("shop-1"), ["openid", "email"],
                      ["sub", "email"])
    login, resp = authenticate(app, web, scope="openid email", prompt="login consent")
    assert path_of(resp) == login + "/consent"


def test_deny_resumes_without_consent(app: Flask, web: FlaskClient) -> None:
    make_account(app)
    login, _ = authenticate(app, web)
    state = resumed(web, post(web, login + "/consent", login + "/consent",
                              {"decision": "deny"}))
    assert state["consented"] is False and state["finished"] is False
    assert state["account_id"]  # authenticated, but the merchant gets access_denied
    with app.app_context():
        assert db.session.scalars(select(Consent)).first() is None


def test_consent_decision_must_be_allow_or_deny(app: Flask, web: FlaskClient) -> None:
    make_account(app)
    login, _ = authenticate(app, web)
    resp = post(web, login + "/consent", login + "/consent", {"decision": "maybe"})
    assert resp.status_code == 400


def test_consent_page_needs_authentication(app: Flask, web: FlaskClient) -> None:
    login = start(web)
    resp = web.get(login + "/consent")
    assert resp.status_code == 303 and path_of(resp) == login
    resp = post(web, login, login + "/consent", {"decision": "allow"})
    assert resp.status_code == 303 and path_of(resp) == login
