"""A real browser (headless Chromium via Playwright) opens the employee dashboard,
signs in through the real login pages with a code from a real SMTP server, sees its
sign-ins and consents, and withdraws a consent. Screenshots in English and German
(wide and narrow) go to ``test-results/browser/`` for a human look."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from idp.release import consent
from idp.store.db import db
from idp.store.models import Consent, SignIn
from tests.support.browser import SHOTS
from tests.support.live import LiveServer
from tests.support.merchants import merchant_id
from tests.support.oidc import make_account, make_unit, register
from tests.support.smtp import SmtpSink, code_in

EMAIL = "ann@corp.example"
pytestmark = pytest.mark.browser


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink) -> dict[str, object]:
    return {"smtp_url": smtp_server.url}


def seed(app: Flask) -> tuple[str, str, str]:
    """Ann with two companies, three sign-ins and consents at two merchants."""
    ann = make_account(app, EMAIL, phone_number="+49 30 1234567")
    corp = make_unit(app, ann, "Corp GmbH", roles=["buyer", "approver"],
                     facts={"department": "Purchasing"}, owners={"department": "scim"})
    make_unit(app, ann, "Corp Logistics", roles=["buyer"])
    office = merchant_id(app, register(app, name="Office Supplies Ltd").client_id)
    travel = merchant_id(app, register(app, name="Travel & Hotels").client_id)
    now = datetime.now(UTC)
    with app.app_context():
        for days, merchant, released in (
            (9, office, ["sub", "email", "given_name", "family_name"]),
            (3, travel, ["sub", "email", "phone_number", "org_name", "roles"]),
            (0, office, ["sub", "email", "given_name", "family_name"]),
        ):
            db.session.add(SignIn(account_id=ann, merchant_id=merchant, unit_id=corp,
                                  protocol="oidc", released=released,
                                  at=now - timedelta(days=days, minutes=5)))
        db.session.commit()
        consent.grant(ann, office, ["openid", "profile", "email"],
                      ["sub", "email", "given_name", "family_name"])
        consent.grant(ann, travel, ["openid", "email", "phone", "org"],
                      ["sub", "email", "phone_number", "org_name", "roles"])
    return ann, office, travel


def test_sign_in_and_withdraw_a_consent(
    app: Flask, live_server: LiveServer, smtp_server: SmtpSink, browser: Any,
    backend_name: str,
) -> None:
    ann, office, travel = seed(app)
    context = browser.new_context(locale="en-GB", viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/account")
    assert re.search(r"/interaction/[\w-]+$", page.url)
    assert "Sign in to your account" in page.locator("main").inner_text()
    page.get_by_label("Work e-mail address").fill(EMAIL)
    page.get_by_role("button", name="Send code").click()
    page.wait_for_url(re.compile(r"/code$"))
    page.get_by_label("Code", exact=True).fill(code_in(smtp_server.last_to(EMAIL)))
    page.get_by_role("button", name="Continue").click()

    page.wait_for_url(re.compile(r"/account$"))
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", name="Your Unitgate account", level=1).is_visible()
    for name in ("Your companies", "Your sign-ins at merchants",
                 "Merchants you share data with", "Your profile"):
        assert page.get_by_role("heading", name=name, level=2).is_visible()
    assert page.locator("tr.ug-signin").count() == 3
    assert page.get_by_role("textbox", name="Phone number").input_value() == "+49 30 1234567"
    assert page.locator("input[name=department]").count() == 0  # HR owns it: read-only
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"dashboard-en-{backend_name}.png"), full_page=True)

    page.get_by_role("button", name="Withdraw consent for Travel & Hotels").click()
    page.wait_for_url(re.compile(r"/account#consents$"))
    assert "Consent withdrawn" in page.get_by_role("status").inner_text()
    rows = page.locator("tr.ug-consent")
    assert rows.count() == 1 and "Office Supplies Ltd" in rows.inner_text()
    with app.app_context():
        left = db.session.scalars(select(Consent.merchant_id).where(Consent.account_id == ann))
        assert list(left) == [office]

    page.goto(f"{live_server.url}/account?lang=de")
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.get_by_role("heading", name="Ihr Unitgate-Konto").is_visible()
    page.screenshot(path=str(SHOTS / f"dashboard-de-{backend_name}.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 800})
    page.screenshot(path=str(SHOTS / f"dashboard-narrow-{backend_name}.png"), full_page=True)

    page.get_by_role("button", name="Abmelden").click()
    page.wait_for_url(re.compile(r"/account/signed-out$"))
    assert page.get_by_role("heading", name="Sie sind abgemeldet").is_visible()
    assert not [c for c in context.cookies() if c["name"] == "ug_session"]
    assert travel
    context.close()
