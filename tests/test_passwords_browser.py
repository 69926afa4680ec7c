"""The password sign-in in a real browser (headless Chromium, Playwright): the e-mail
page links the password page, the browser fills e-mail address and password (the
fields carry ``autocomplete="username"`` and ``"current-password"``), the dashboard
asks for an own password and takes one with the current password."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from idp.accounts import lifecycle
from idp.factors import passwords
from tests.support.live import LiveServer
from tests.support.oidc import make_account, make_unit

pytestmark = pytest.mark.browser

EMAIL = "ann@corp.example"
FIRST = "Amber-Lighthouse-Quill-31"
CHOSEN = "Copper-Willow-Sonata-58"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"argon2_time_cost": 1, "argon2_memory_kib": 8192}


@pytest.fixture
def person(app: Flask) -> Flask:
    ann = make_account(app, EMAIL)
    make_unit(app, ann, "Corp GmbH")
    with app.app_context():
        passwords.set_unit_policy("corp-gmbh", True, "test")
        account = lifecycle.get(ann)
        assert account is not None
        passwords.set_own(account, FIRST, via="password")
    return app


def test_password_sign_in_and_change_in_the_browser(
    person: Flask, live_server: LiveServer, browser: Any, backend_name: str,
) -> None:
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.goto(f"{live_server.url}/account")
    page.get_by_role("link", name="Sign in with a password").click()
    page.wait_for_url(re.compile(r"/sign-in-password$"))
    assert page.get_by_label("Password").get_attribute("autocomplete") == "current-password"
    assert page.get_by_label("Work e-mail address").get_attribute("autocomplete") == "username"
    page.get_by_label("Work e-mail address").fill(EMAIL)
    page.get_by_label("Password").fill(FIRST)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/account$"))
    assert "You sign in with an e-mail code or with the password you chose" in \
        page.locator("#password").inner_text()
    page.get_by_label("Current password").fill(FIRST)
    page.get_by_label("New password", exact=True).fill(CHOSEN)
    page.get_by_label("New password again").fill(CHOSEN)
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url(re.compile(r"/account#password$"))
    assert "Your password was changed." in page.locator("main").inner_text()
    context.close()
    with person.app_context():
        account = lifecycle.by_email(EMAIL)
        assert account is not None and passwords.status(account.id) == "set_by_user"
