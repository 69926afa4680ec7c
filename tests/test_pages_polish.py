"""Issue 16, the pages' defects: the start page at ``/``, the favicon, error pages in
the page's language with a way back, the page after the back button, the code page
after too many tries, plural minutes, localised times, the consent page without
internal identifiers, translated built-in roles, unit fields that shadow built-in
ones, whole e-mail addresses and the TOTP set-up's QR code and cancel link."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from flask import Flask, render_template_string
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.test import TestResponse

from idp.cli import main
from idp.i18n import format_when
from idp.interaction.pending import merchant_home
from idp.mail.outbox import courier
from idp.mail.render import render_email
from tests.support.login import (
    add_protocol_stand_in,
    code_from_outbox,
    csrf_token,
    post_form,
    sign_in_to_dashboard,
    start,
    submit_code,
    submit_email,
)
from tests.support.oidc import auth_params, make_account, make_unit, register

EMAIL = "ann@corp.example"
GERMAN = {"Accept-Language": "de-DE,de;q=0.9"}
HEX_ID = re.compile(r"\b[0-9a-f]{32}\b")


@pytest.fixture
def web(app: Flask, client: FlaskClient) -> Iterator[FlaskClient]:
    add_protocol_stand_in(app)
    yield client
    courier(app).drain()


def text_of(html: str) -> str:
    """The visible text of a page, roughly: tags dropped, spaces folded."""
    body = html.split("<body>", 1)[-1]
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


def location(resp: TestResponse) -> str:
    assert resp.status_code == 303, (resp.status_code, resp.get_data(as_text=True)[:300])
    return urlsplit(resp.headers["Location"]).path


# --- the start page and the favicon -----------------------------------------------------

def test_start_page_says_what_unitgate_is_and_leads_to_the_dashboard(web: FlaskClient) -> None:
    resp = web.get("/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert "Your work identity for business purchases" in html
    assert 'href="/account"' in html and "Sign in to your account" in html
    assert "not_found" not in html
    german = web.get("/", headers=GERMAN).get_data(as_text=True)
    assert '<html lang="de">' in german
    assert "Ihre berufliche Identität für Geschäftseinkäufe" in german
    assert "Bei Ihrem Konto anmelden" in german and "Sign in to your account" not in german


def test_start_page_offers_the_account_to_a_signed_in_browser(app: Flask,
                                                              web: FlaskClient) -> None:
    make_account(app, EMAIL)
    sign_in_to_dashboard(app, web, EMAIL)
    assert "Go to your account" in web.get("/").get_data(as_text=True)


def test_favicon_is_an_svg_linked_from_every_page(web: FlaskClient) -> None:
    icon = web.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert icon.get_data(as_text=True).startswith("<svg")
    legacy = web.get("/favicon.ico")
    assert legacy.status_code == 200 and legacy.mimetype == "image/svg+xml"
    for page in ("/", start(web), "/nowhere"):
        html = web.get(page).get_data(as_text=True)
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html


# --- error pages ------------------------------------------------------------------------

def test_german_error_page_has_a_sentence_a_way_back_and_the_code_small(
    web: FlaskClient,
) -> None:
    resp = web.get("/nowhere", headers=GERMAN)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 404
    assert "<h1>Seite nicht gefunden</h1>" in html
    assert "Unter dieser Adresse gibt es keine Seite." in html
    assert '<a class="ug-button" href="/">Zur Unitgate-Startseite</a>' in html
    assert "The requested URL" not in html and "Something went wrong" not in html
    support = re.search(r'<p class="ug-support ug-muted">(.*?)</p>', html, re.S)
    assert support and "<code>not_found</code>" in support.group(1)
    assert html.count("not_found") == 1  # only there


def test_oauth_error_in_german_shows_no_english(app: Flask, web: FlaskClient) -> None:
    rp = register(app)
    params = auth_params(rp, client_id="no-such-client")
    resp = web.get("/authorize", query_string=params, headers=GERMAN)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    text = text_of(html)
    assert "Diese Anmeldung kann nicht beginnen" in text
    assert "Dieser Shop ist hier nicht bekannt." in text
    assert "The client is not known here" not in text and "invalid_request:" not in text
    assert "Für den Support: invalid_request" in text
    english = web.get("/authorize", query_string=params, headers={"Accept-Language": "en"})
    english_text = text_of(english.get_data(as_text=True))
    assert "This sign-in cannot start" in english_text
    assert "The client is not known here." in english_text


def test_a_form_without_its_csrf_token_says_the_form_expired(web: FlaskClient) -> None:
    login = start(web)
    resp = web.post(login + "/email", data={"email": EMAIL}, headers=GERMAN)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "<h1>Dieses Formular ist abgelaufen</h1>" in html
    assert "Dem Formular fehlt sein Sicherheitsmerkmal (CSRF)." in html
    assert "The CSRF token is missing." not in html


def test_untranslated_details_stay_off_german_pages(app: Flask) -> None:
    from idp.errors import error_page

    with app.test_request_context("/", headers=GERMAN):
        html = error_page(400, "invalid_request", "Some English detail nobody translated.")
    assert "Some English detail" not in html and "Diese Anmeldung kann nicht beginnen" in html


def test_admin_api_keeps_problem_json(web: FlaskClient) -> None:
    resp = web.get("/api/v1/no-such-thing", headers=GERMAN)
    assert resp.status_code == 404
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["code"] == "not_found"


def test_refused_sign_in_error_leads_back_to_the_merchant(app: Flask) -> None:
    """finish_authentication's 403 (an account that may not sign in) links to the
    merchant's registered origin, in the page's language."""
    from idp.errors import error_page
    from idp.interaction.pending import Interaction
    from idp.login.flow import back_to_merchant

    rp = register(app, name="Office Shop")
    ix = Interaction(id="x", protocol="oidc", client_id=rp.client_id, client_name="Office Shop",
                     resume_endpoint="oidc.resume", params={"redirect_uri": rp.redirect_uri})
    with app.test_request_context("/", headers=GERMAN):
        back = back_to_merchant(ix)
        page = error_page(403, "access_denied", "This account cannot sign in.", back)
    assert back == ("https://rp.example/", "Zurück zu Office Shop")
    assert '<a class="ug-button" href="https://rp.example/" rel="noreferrer">' in page
    assert "Mit diesem Konto ist keine Anmeldung möglich." in page


# --- the back button after consent ---------------------------------------------------------

def test_back_after_consent_offers_the_way_to_the_merchant(app: Flask,
                                                           client: FlaskClient) -> None:
    rp = register(app, name="Office Shop")
    make_account(app, EMAIL)
    login = location(client.get("/authorize", query_string=auth_params(rp)))
    post_form(client, login, login + "/email", {"email": EMAIL})
    resp = post_form(client, login + "/code", login + "/code",
                     {"code": code_from_outbox(app, EMAIL)})
    assert location(resp) == login + "/consent"
    resp = post_form(client, login + "/consent", login + "/consent", {"decision": "allow"})
    assert resp.headers["Location"].startswith("https://rp.example/cb?")
    back = client.get(login + "/consent")  # the browser's back button
    html = back.get_data(as_text=True)
    assert back.status_code == 200
    assert "You are signed in" in html and "has expired" not in html
    assert '<a class="ug-button" href="https://rp.example/" rel="noreferrer">' \
           'Continue to Office Shop</a>' in html
    assert "<form" not in html
    german = client.get(login + "/consent", headers=GERMAN).get_data(as_text=True)
    assert "Sie sind angemeldet" in german and "Weiter zu Office Shop" in german


def test_back_after_deny_says_the_sign_in_ended(app: Flask, client: FlaskClient) -> None:
    rp = register(app, name="Office Shop")
    make_account(app, EMAIL)
    login = location(client.get("/authorize", query_string=auth_params(rp)))
    post_form(client, login, login + "/email", {"email": EMAIL})
    post_form(client, login + "/code", login + "/code", {"code": code_from_outbox(app, EMAIL)})
    post_form(client, login + "/consent", login + "/consent", {"decision": "deny"})
    html = client.get(login + "/consent").get_data(as_text=True)
    assert "This sign-in has ended" in html and "Back to Office Shop" in html


def test_unknown_sign_in_link_offers_the_start_page(web: FlaskClient) -> None:
    resp = web.get("/interaction/no-such-interaction/consent", headers=GERMAN)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "Dieser Anmeldelink ist abgelaufen" in html
    assert '<a class="ug-button" href="/">Zur Unitgate-Startseite</a>' in html


def test_another_browser_does_not_see_how_a_sign_in_ended(app: Flask,
                                                           client: FlaskClient) -> None:
    rp = register(app, name="Office Shop")
    make_account(app, EMAIL)
    login = location(client.get("/authorize", query_string=auth_params(rp)))
    post_form(client, login, login + "/email", {"email": EMAIL})
    post_form(client, login + "/code", login + "/code", {"code": code_from_outbox(app, EMAIL)})
    post_form(client, login + "/consent", login + "/consent", {"decision": "allow"})
    other = app.test_client()
    resp = other.get(login + "/consent")
    assert resp.status_code == 400 and "Office Shop" not in resp.get_data(as_text=True)


def test_merchant_home_is_the_origin_of_the_registered_address() -> None:
    assert merchant_home({"redirect_uri": "https://shop.example:8443/cb?x=1"}) == \
        "https://shop.example:8443/"
    assert merchant_home({"acs_url": "https://sp.example/saml/acs"}) == "https://sp.example/"
    assert merchant_home({"redirect_uri": "javascript:alert(1)"}) is None
    assert merchant_home({"redirect_uri": "https://user@evil.example/"}) is None
    assert merchant_home({}) is None


# --- the code page ------------------------------------------------------------------------

def test_sixth_wrong_code_still_says_too_many_tries_and_offers_only_a_new_code(
    app: Flask, web: FlaskClient,
) -> None:
    login = start(web)
    submit_email(web, login, EMAIL)
    good = code_from_outbox(app, EMAIL)
    wrong = "000000" if good != "000000" else "111111"
    for _ in range(5):
        submit_code(web, login, wrong)
    html = web.get(login + "/code").get_data(as_text=True)
    assert "Too many wrong codes" in html
    assert 'id="code"' not in html and ">Continue<" not in html
    submit_code(web, login, wrong)  # the sixth
    html = web.get(login + "/code").get_data(as_text=True)
    assert "Too many wrong codes" in html and "expired or was already used" not in html
    assert 'id="code"' not in html and ">Continue<" not in html
    assert "Send a new code to" in html
    # reloading still says it (not a one-time message), and even the right code is refused
    assert "Too many wrong codes" in web.get(login + "/code").get_data(as_text=True)
    submit_code(web, login, good)
    assert "Too many wrong codes" in web.get(login + "/code").get_data(as_text=True)
    # a new code brings the form back
    html = web.get(login + "/code").get_data(as_text=True)
    web.post(login + "/resend", data={"csrf_token": csrf_token(html)})
    html = web.get(login + "/code").get_data(as_text=True)
    assert 'id="code"' in html and ">Continue<" in html


class TestOneMinuteCodes:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"otp_minutes": 1}

    def test_one_minute_is_singular_in_both_languages(self, app: Flask,
                                                      web: FlaskClient) -> None:
        login = start(web)
        submit_email(web, login, EMAIL)
        english = text_of(web.get(login + "/code").get_data(as_text=True))
        assert "It is valid for 1 minute." in english and "1 minutes" not in english
        german = text_of(web.get(login + "/code", headers=GERMAN).get_data(as_text=True))
        assert "Er ist 1 Minute gültig." in german
        with app.test_request_context("/"):
            mail = render_email("code", "en", code="123456", minutes=1, client_name="Shop",
                                expires_at=datetime.now(UTC), long_code=False)
            assert "valid for 1 minute," in mail.text and "1 minutes" not in mail.text
            german_mail = render_email("code", "de", code="123456", minutes=1,
                                       client_name="Shop", expires_at=datetime.now(UTC),
                                       long_code=False)
            assert "1 Minute gültig" in german_mail.text


def test_dashboard_sign_in_says_sign_in_to_your_account(web: FlaskClient) -> None:
    resp = web.get("/account", headers=GERMAN)
    html = web.get(location(resp), headers=GERMAN).get_data(as_text=True)
    assert "Bei Ihrem Konto anmelden" in html and "Unitgate-Konto bittet" not in html


# --- dates and times ----------------------------------------------------------------------

MOMENT = datetime(2026, 12, 6, 14, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "cookie", "expected"),
    [
        ({"Accept-Language": "de"}, None, "6. Dez. 2026, 15:05 MEZ"),
        ({"Accept-Language": "en"}, None, "Dec 6, 2026, 2:05\u202fPM UTC"),
        ({"Accept-Language": "de"}, "America/New_York", "6. Dez. 2026, 09:05 -0500"),
        ({"Accept-Language": "en"}, "America/New_York", "Dec 6, 2026, 9:05\u202fAM EST"),
        ({"Accept-Language": "de"}, "../../etc/passwd", "6. Dez. 2026, 15:05 MEZ"),
        ({"Accept-Language": "en"}, "Not/AZone", "Dec 6, 2026, 2:05\u202fPM UTC"),
    ],
)
def test_one_helper_formats_times_for_the_reader(app: Flask, headers: dict[str, str],
                                                 cookie: str | None, expected: str) -> None:
    if cookie:
        headers = {**headers, "Cookie": f"ug_tz={cookie}"}
    with app.test_request_context("/", headers=headers):
        shown = format_when(MOMENT)
        assert shown.replace(" ", "\u202f") == expected.replace(" ", "\u202f")
        assert render_template_string("{{ m|when }}", m=MOMENT) == shown
        assert render_template_string("{{ m|when_date }}", m=MOMENT.replace(tzinfo=None))


def test_german_times_use_the_24_hour_clock_with_the_zone(app: Flask) -> None:
    evening = datetime(2026, 7, 1, 19, 30, tzinfo=UTC)
    with app.test_request_context("/", headers=GERMAN):
        assert format_when(evening) == "1. Juli 2026, 21:30 MESZ"
        assert format_when(evening, "time") == "21:30 MESZ"
        mail = render_email("code", "de", code="123456", minutes=10, client_name="Shop",
                            expires_at=evening, long_code=False)
    assert "bis 21:30 MESZ" in mail.text and "PM" not in mail.text and "UTC" not in mail.text


def test_pages_load_the_time_zone_script(web: FlaskClient) -> None:
    html = web.get("/").get_data(as_text=True)
    assert '<script src="/static/timezone.js" defer></script>' in html
    script = web.get("/static/timezone.js")
    assert script.status_code == 200 and "ug_tz=" in script.get_data(as_text=True)


# --- dashboard and consent ------------------------------------------------------------------

def _wallet_sign_in(app: Flask, client: FlaskClient, scope: str,
                    headers: dict[str, str] | None = None) -> tuple[str, str]:
    """/authorize for ``scope``; returns (login path, the consent page's HTML)."""
    rp = register(app, name="Office Shop")
    login = location(client.get("/authorize",
                                query_string=auth_params(rp, scope=scope), headers=headers))
    post_form(client, login, login + "/email", {"email": EMAIL})
    resp = post_form(client, login + "/code", login + "/code",
                     {"code": code_from_outbox(app, EMAIL)})
    assert location(resp) == login + "/consent"
    return login, client.get(login + "/consent", headers=headers).get_data(as_text=True)


def test_consent_page_shows_no_internal_ids_or_metadata(app: Flask,
                                                        client: FlaskClient) -> None:
    ann = make_account(app, EMAIL)
    make_unit(app, ann, "Corp GmbH", roles=["employee"])
    _login, html = _wallet_sign_in(app, client, "openid profile email org", GERMAN)
    text = text_of(html)
    assert not HEX_ID.search(text)
    assert "Unternehmenskennung" not in text and "Corp GmbH" in text
    assert "Letzte Profiländerung" not in text and "Vollständiger Name" not in text
    assert "Vorname" in text and "Nachname" in text
    assert "Mitarbeiter/in" in text and "employee" not in text
    assert f'<span class="ug-address">{EMAIL}</span>' in html


def test_consent_labels_wrap_instead_of_overlapping(web: FlaskClient) -> None:
    css = web.get("/static/unitgate.css").get_data(as_text=True)
    rule = re.search(r"\.ug-scope dt \{([^}]*)\}", css)
    assert rule and "overflow-wrap: anywhere" in rule.group(1) and "min-width: 0" in rule.group(1)
    assert re.search(r"\.ug-scope dl \{[^}]*minmax\(0,", css)
    address = re.search(r"\.ug-address \{([^}]*)\}", css)
    assert address and "inline-block" in address.group(1)


def test_dashboard_lists_no_raw_claim_names_and_translates_roles(
    app: Flask, web: FlaskClient, runner: FlaskCliRunner,
) -> None:
    ann = make_account(app, EMAIL)
    make_unit(app, ann, "Corp GmbH", roles=["employee", "buyer"],
              fields=("purchase_limit",), facts={"extra.purchase_limit": "500"})
    shop = app.test_client()
    login, _html = _wallet_sign_in(app, shop, "openid wallet org")
    post_form(shop, login + "/consent", login + "/consent", {"decision": "allow"})
    html = sign_in_to_dashboard(app, web, EMAIL).get_data(as_text=True)
    assert "wallet_fields" not in html and "Your company&#39;s own fields" in html
    assert "Roles: Employee, buyer" in text_of(html)
    german = text_of(web.get("/account", headers=GERMAN).get_data(as_text=True))
    assert "Rollen: Mitarbeiter/in, buyer" in german and "employee" not in german


def test_dashboard_times_are_localised_with_the_zone(app: Flask, client: FlaskClient) -> None:
    make_account(app, EMAIL)
    login, _html = _wallet_sign_in(app, client, "openid profile")
    post_form(client, login + "/consent", login + "/consent", {"decision": "allow"})
    german = client.get("/account", headers=GERMAN).get_data(as_text=True)
    shown = re.search(r'<time datetime="[^"]+">([^<]+)</time>', german)
    assert shown and re.fullmatch(r"\d{1,2}\. \w+\.? \d{4}, \d{2}:\d{2} (MEZ|MESZ)",
                                  shown.group(1)), shown.group(1) if shown else german
    assert " AM" not in german and " PM" not in german


def _unit_with_department(app: Flask, account_id: str) -> None:
    from idp.store.db import db
    from idp.store.models import UnitProfileField

    unit_id = make_unit(app, account_id, "Acme Demo GmbH")
    with app.app_context():
        db.session.add(UnitProfileField(unit_id=unit_id, name="department",
                                        label="Department", required=True, position=0))
        db.session.add(UnitProfileField(unit_id=unit_id, name="kst", label="Cost centre",
                                        required=False, position=1))
        db.session.commit()


def test_a_unit_field_shadows_the_built_in_field_of_that_name_or_label(
    app: Flask, web: FlaskClient,
) -> None:
    ann = make_account(app, EMAIL)
    _unit_with_department(app, ann)
    login = start(web)
    submit_email(web, login, EMAIL)
    resp = submit_code(web, login, code_from_outbox(app, EMAIL))
    assert location(resp) == login + "/profile"  # the unit's Department is required
    form = web.get(login + "/profile").get_data(as_text=True)
    assert form.count(">Cost centre") == 1 and 'name="cost_centre"' not in form
    assert 'name="extra__kst"' in form and 'name="extra__department"' in form
    html = post_form(web, login + "/profile", login + "/profile",
                     {"given_name": "Ann", "family_name": "Example",
                      "extra__department": "Purchasing"})
    assert html.status_code == 303
    page = sign_in_to_dashboard(app, web.application.test_client(), EMAIL)
    dashboard = page.get_data(as_text=True)
    labels = [x.strip() for x in re.findall(r'<label for="[^"]+">([^<]+)', dashboard)]
    assert labels.count("Department") == 1 and labels.count("Cost centre") == 1
    assert 'name="extra__department"' in dashboard and 'name="department"' not in dashboard


# --- two-step set-up ----------------------------------------------------------------------

def test_totp_setup_shows_a_qr_code_and_a_cancel_link(app: Flask, client: FlaskClient,
                                                      runner: FlaskCliRunner) -> None:
    rp = register(app, name="Office Shop")
    ann = make_account(app, EMAIL)
    make_unit(app, ann, "Corp GmbH")
    assert runner.invoke(main, ["units", "policy", "corp-gmbh", "--require-totp"]).exit_code == 0
    login = location(client.get("/authorize", query_string=auth_params(rp)))
    post_form(client, login, login + "/email", {"email": EMAIL})
    post_form(client, login + "/code", login + "/code", {"code": code_from_outbox(app, EMAIL)})
    resp = client.get(login + "/totp/setup")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    qr = re.search(r'<div id="totp-qr">(<svg role="img" aria-label="[^"]+"[^>]*>.*?</svg>)</div>',
                   html, re.S)
    assert qr and "<script" not in html.split("</head>")[1]
    assert '<a href="https://rp.example/" id="totp-cancel">Cancel and go back to Office Shop</a>' \
        in html
    csp = resp.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    german = client.get(login + "/totp/setup", headers=GERMAN).get_data(as_text=True)
    assert "Scannen Sie diesen QR-Code mit der App:" in german
    assert "Abbrechen und zurück zu Office Shop" in german


def test_totp_setup_from_the_dashboard_cancels_to_the_dashboard(app: Flask,
                                                                web: FlaskClient) -> None:
    make_account(app, EMAIL)
    page = sign_in_to_dashboard(app, web, EMAIL).get_data(as_text=True)
    resp = web.post("/account/two-step/setup", data={"csrf_token": csrf_token(page)})
    html = web.get(resp.headers["Location"]).get_data(as_text=True)
    assert '<svg role="img"' in html
    assert '<a href="/account#two-step" id="totp-cancel">' in html
