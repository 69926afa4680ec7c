"""A real browser (headless Chromium via Playwright) on the real server: a platform
staff member signs in through the login pages, creates a company in the operator
console and goes straight on to add its first contact, who gets the invitation by
e-mail (a real SMTP server); the same at phone width (360 px) without a sideways
scroll, and the filter bar finds the new customer."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from idp.rights import staff
from idp.store.db import db
from idp.store.models import Access, Unit
from tests.support.browser import SHOTS, sign_in_by_code
from tests.support.live import LiveServer
from tests.support.oidc import make_account
from tests.support.smtp import SmtpSink

OPS = "ops@operator.example"
pytestmark = pytest.mark.browser


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink) -> dict[str, object]:
    return {"smtp_url": smtp_server.url, "platform_staff": OPS}


def test_staff_creates_a_company_and_adds_its_first_contact(
    app: Flask, live_server: LiveServer, smtp_server: SmtpSink, browser: Any,
    backend_name: str,
) -> None:
    make_account(app, OPS)
    with app.app_context():
        staff.add(OPS)
    context = browser.new_context(locale="en-GB", viewport={"width": 360, "height": 800})
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/operator/")
    sign_in_by_code(page, OPS, smtp_server)
    page.wait_for_url(re.compile(r"/admin/operator/$"))
    assert page.get_by_role("heading", name="Customers", level=1).is_visible()

    page.get_by_role("link", name="New customer").click()
    page.wait_for_url(re.compile(r"/admin/operator/customers/new$"))
    page.get_by_label("A company", exact=True).check()
    page.get_by_label("Company name").fill("Initech GmbH")
    page.get_by_label("Street and number").fill("Hauptstraße 1")
    page.get_by_label("Postal code").fill("10115")
    page.get_by_label("City").fill("Berlin")
    page.get_by_label("Country (two letters, such as DE)").fill("DE")
    page.get_by_label("VAT id").fill("DE123456789")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.get_by_role("button", name="Create and add the first contact").click()

    page.wait_for_url(re.compile(r"/admin/units/\w+/accesses#invite$"))
    assert "Initech GmbH was created. Now add its first contact." in page.get_by_role(
        "status").inner_text()
    page.get_by_label("E-mail address").fill("ivy@initech.example")
    page.get_by_label("Given name").fill("Ivy")
    page.get_by_label("Family name").fill("Initech")
    page.locator("#invite").get_by_label("Main user").check()
    page.get_by_label("Yes: invite them to register and sign in").check()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"operator-contact-narrow-{backend_name}.png"),
                    full_page=True)
    page.get_by_role("button", name="Invite or link").click()

    page.wait_for_url(re.compile(r"/accesses$"))
    assert "ivy@initech.example was invited." in page.get_by_role("status").inner_text()
    page.get_by_role("link", name="Operator console").click()
    page.get_by_role("link", name="Initech GmbH").click()
    page.get_by_role("link", name="Contacts").click()
    row = page.locator("tr.ug-contact")
    assert row.count() == 1 and "ivy@initech.example" in row.inner_text()
    assert "Invited" in row.inner_text()
    invitation = smtp_server.last_to("ivy@initech.example")  # waits for the delivery
    assert "Initech GmbH" in str(invitation.get_body(("plain",)).get_content())
    with app.app_context():
        unit = db.session.scalars(select(Unit).where(Unit.name == "Initech GmbH")).one()
        access = db.session.scalars(select(Access).where(Access.unit_id == unit.id)).one()
        assert access.roles == ["main_user"] and access.status == "invited"

    # the customer list and the authorisations view fit a phone too
    for path in ("/admin/operator/", f"/admin/operator/customers/{unit.id}/authorisations"):
        page.goto(f"{live_server.url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, path
    assert page.get_by_label("Select Ivy Initech in Initech GmbH").count() == 0  # by e-mail
    assert page.get_by_label("Select ivy@initech.example in Initech GmbH").is_visible()
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(f"{live_server.url}/admin/operator/?q=initech&lang=de")
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.get_by_role("heading", name="Kunden", level=1).is_visible()
    assert page.locator("tr.ug-customer").count() == 1
    page.screenshot(path=str(SHOTS / f"operator-customers-de-{backend_name}.png"),
                    full_page=True)
    context.close()
