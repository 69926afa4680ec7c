"""Issue 16 item 5 in a real browser (headless Chromium, Playwright): a merchant's
branded sign-in page loads its logo and its colours under the page's own CSP, with
no CSP violation reported, at phone and desktop width."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from idp.branding import service
from idp.rights import SYSTEM
from tests.support.browser import SHOTS
from tests.support.images import png
from tests.support.live import LiveServer
from tests.support.login import add_protocol_stand_in, stand_in_merchant

pytestmark = pytest.mark.browser

PRIMARY = "#0b5394"


@pytest.fixture
def branded(app: Flask) -> Flask:
    add_protocol_stand_in(app)
    with app.app_context():
        mid = stand_in_merchant("paper-co")
        service.set_merchant_logo(SYSTEM, mid, png(96, 48, (11, 83, 148)))
        service.set_merchant_colours(SYSTEM, mid, PRIMARY, "#ffffff")
    return app


LOOK = """() => {
  const img = document.querySelector('header img.ug-logo');
  const button = document.querySelector('main button[type=submit]');
  return {
    logo: img ? {complete: img.complete, width: img.naturalWidth} : null,
    button: getComputedStyle(button).backgroundColor,
    body: getComputedStyle(document.body).backgroundColor,
    name: document.querySelector('.ug-merchant-name').textContent,
    overflow: document.documentElement.scrollWidth > document.documentElement.clientWidth,
  };
}"""


@pytest.mark.parametrize("width", [360, 1280])
def test_the_branded_login_page_loads_its_logo_and_colours_without_csp_errors(
    branded: Flask, live_server: LiveServer, browser: Any, backend_name: str, width: int,
) -> None:
    context = browser.new_context(locale="en-GB", viewport={"width": width, "height": 800})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning")
            and ("Content Security Policy" in m.text or "Refused" in m.text) else None)
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.error('Content Security Policy violation: ' + e.violatedDirective));"
    )
    page.goto(f"{live_server.url}/_test/start?client_id=paper-co&client_name=Paper+Co")
    page.wait_for_load_state("networkidle")
    look = page.evaluate(LOOK)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"branded-login-{width}-{backend_name}.png"), full_page=True)
    assert look["logo"] is not None and look["logo"]["complete"], look
    assert look["logo"]["width"] == 96, look  # decoded: the image really loaded
    assert look["button"] == "rgb(11, 83, 148)", look
    assert look["body"] == "rgb(255, 255, 255)", look
    assert look["name"] == "Paper Co" and not look["overflow"], look
    assert problems == []
    context.close()
