"""A real browser (headless Chromium via Playwright) signs in to the dashboard through
the real login pages, finds its own session marked among the account's sessions and
signs out everywhere else, at phone width (360 px) without a sideways scroll."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from tests.support import oidc
from tests.support.browser import SHOTS, sign_in_by_code
from tests.support.live import LiveServer
from tests.support.smtp import SmtpSink

EMAIL = "ann@corp.example"
pytestmark = pytest.mark.browser


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink) -> dict[str, object]:
    return {"smtp_url": smtp_server.url}


def test_sign_out_everywhere_else_at_phone_width(
    app: Flask, live_server: LiveServer, smtp_server: SmtpSink, browser: Any,
    backend_name: str,
) -> None:
    ann = oidc.make_account(app, EMAIL)
    elsewhere = app.test_client()
    oidc.start_session(app, elsewhere, ann)  # another browser, signed in earlier
    context = browser.new_context(locale="en-GB", viewport={"width": 360, "height": 800})
    page = context.new_page()
    page.goto(f"{live_server.url}/account")
    sign_in_by_code(page, EMAIL, smtp_server)
    page.wait_for_url(re.compile(r"/account$"))

    section = page.locator("#sessions")
    assert section.get_by_role("heading", name="Where you are signed in").is_visible()
    rows = section.locator("tr.ug-session")
    assert rows.count() == 2
    assert "This browser" in section.locator("tr.ug-session-current").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    SHOTS.mkdir(parents=True, exist_ok=True)
    section.screenshot(path=str(SHOTS / f"dashboard-sessions-narrow-{backend_name}.png"))

    page.get_by_role("button", name="Sign out everywhere else").click()
    page.wait_for_url(re.compile(r"/account#sessions$"))
    assert "Signed out there." in page.get_by_role("status").inner_text()
    assert section.locator("tr.ug-session").count() == 1
    assert not oidc.has_session(app, elsewhere)
    context.close()
