"""Issue 16 item 4 in a real browser (headless Chromium, Playwright): on the consent
page the employee unticks an optional item; the required e-mail address has no box
and is marked; the choice reaches the protocol side and is stored with the consent."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask

from idp.store.db import db
from idp.store.models import Consent
from tests.support.browser import sign_in_by_code
from tests.support.live import LiveServer
from tests.support.login import add_protocol_stand_in
from tests.support.oidc import make_account
from tests.support.smtp import SmtpSink

pytestmark = pytest.mark.browser

EMAIL = "ann@corp.example"


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink) -> dict[str, object]:
    return {"smtp_url": smtp_server.url}


@pytest.fixture
def stand_in(app: Flask) -> tuple[Flask, str]:
    add_protocol_stand_in(app)
    return app, make_account(app, EMAIL, phone_number="+4930123456")


def test_unticking_an_optional_item_on_the_consent_page(
    stand_in: tuple[Flask, str], live_server: LiveServer, smtp_server: SmtpSink, browser: Any,
) -> None:
    app, ann = stand_in
    context = browser.new_context(locale="en-GB", viewport={"width": 360, "height": 780})
    page = context.new_page()
    page.goto(f"{live_server.url}/_test/start?client_name=Office+Supplies+Ltd"
              "&scope=openid+profile+email+phone")
    sign_in_by_code(page, EMAIL, smtp_server)
    page.wait_for_url(re.compile(r"/consent$"))
    assert "needed by Office Supplies Ltd to sign you in" in page.locator("main").inner_text()
    phone = page.get_by_label("Phone number")
    assert phone.is_checked() and page.get_by_label("Given name").is_checked()
    assert page.locator('input[name="share"][value="email"]').count() == 0  # required
    assert page.locator(".ug-required").first.is_visible()
    phone.uncheck()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(re.compile(r"/_test/resume/"))
    state = json.loads(page.locator("body").inner_text())
    assert state["consented"] is True and state["withheld"] == ["phone_number"]
    context.close()
    with app.app_context():
        row = db.session.query(Consent).filter_by(account_id=ann).one()
        assert row.withheld == ["phone_number"]
