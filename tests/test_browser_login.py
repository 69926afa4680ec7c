"""A real browser (headless Chromium driven by Playwright) signs in the way an
employee does: the merchant's redirect, the e-mail page, the code from a real SMTP
server, the wallet profile, consent, and back to the protocol's resume endpoint.

Screenshots of the login page in English and German are written to
``test-results/browser/`` for a human look.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask

from tests.support.browser import SHOTS
from tests.support.live import LiveServer
from tests.support.login import add_protocol_stand_in
from tests.support.smtp import SmtpSink, code_in

pytestmark = pytest.mark.browser


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink) -> dict[str, object]:
    return {"smtp_url": smtp_server.url}


@pytest.fixture
def stand_in(app: Flask) -> Flask:
    """The protocol stand-in, added before the live server answers its first request."""
    add_protocol_stand_in(app)
    return app


def test_full_sign_in_creates_wallet_and_consents(
    stand_in: Flask, live_server: LiveServer, smtp_server: SmtpSink, browser: Any,
    backend_name: str,
) -> None:
    context = browser.new_context(locale="en-GB", viewport={"width": 900, "height": 760})
    page = context.new_page()
    page.goto(f"{live_server.url}/_test/start?client_name=Office+Supplies+Ltd"
              "&scope=openid+profile+email+wallet&login_hint=nina.neu@corp.example")
    assert re.search(r"/interaction/[\w-]+$", page.url)
    email = page.get_by_label("Work e-mail address")
    assert email.get_attribute("type") == "email"
    assert email.get_attribute("autocomplete") == "username webauthn"
    assert email.input_value() == "nina.neu@corp.example"  # from login_hint
    assert page.locator("html").get_attribute("lang") == "en"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"login-en-{backend_name}.png"), full_page=True)

    page.get_by_role("button", name="Send code").click()
    page.wait_for_url(re.compile(r"/code$"))
    code_field = page.get_by_label("Code", exact=True)
    assert code_field.get_attribute("autocomplete") == "one-time-code"
    assert code_field.get_attribute("inputmode") == "numeric"
    code = code_in(smtp_server.last_to("nina.neu@corp.example"))
    page.screenshot(path=str(SHOTS / f"code-en-{backend_name}.png"), full_page=True)
    code_field.fill(code)
    page.get_by_role("button", name="Continue").click()

    page.wait_for_url(re.compile(r"/profile$"))
    assert page.get_by_role("heading", name="Create your corporate wallet").is_visible()
    page.get_by_label("Given name").fill("Nina")
    page.get_by_label("Family name").fill("Neu")
    # no unit joined: no employer to keep a cost centre for, so none is asked
    assert page.get_by_label("Cost centre").count() == 0
    page.get_by_role("button", name="Save and continue").click()

    page.wait_for_url(re.compile(r"/consent$"))
    release = page.locator(".ug-release").inner_text()
    assert "nina.neu@corp.example" in release and "Nina" in release
    page.screenshot(path=str(SHOTS / f"consent-en-{backend_name}.png"), full_page=True)
    page.get_by_role("button", name="Allow").click()

    page.wait_for_url(re.compile(r"/_test/resume/"))
    state = json.loads(page.locator("body").inner_text())
    assert state["finished"] is True and state["amr"] == ["otp"]
    assert state["email"] == "nina.neu@corp.example"
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["ug_session"]["httpOnly"] is True
    assert cookies["ug_session"]["sameSite"] == "Lax"
    context.close()


def test_german_login_page(stand_in: Flask, live_server: LiveServer, browser: Any,
                           backend_name: str) -> None:
    context = browser.new_context(locale="de-DE", viewport={"width": 900, "height": 640})
    page = context.new_page()
    page.goto(f"{live_server.url}/_test/start?client_name=B%C3%BCrobedarf+GmbH")
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.get_by_role("heading", name="Anmelden").is_visible()
    assert page.get_by_label("Berufliche E-Mail-Adresse").is_visible()
    assert "Bürobedarf GmbH bittet Sie" in page.locator("main").inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"login-de-{backend_name}.png"), full_page=True)
    # the language link switches to English and the choice sticks
    page.get_by_role("link", name="English").click()
    assert page.get_by_label("Work e-mail address").is_visible()
    page.goto(page.url.split("?")[0])  # no ?lang=: the cookie remembers English
    assert page.get_by_label("Work e-mail address").is_visible()
    context.close()
