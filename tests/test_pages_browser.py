"""Issue 16 in a real browser (headless Chromium, Playwright): on the German consent
page at phone width a long label ("Unternehmen", "E-Mail-Adresse bestätigt") wraps in
its column and never overlaps its value, and an e-mail address is not broken at its
hyphen while it fits its box."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from tests.support.browser import SHOTS
from tests.support.live import LiveServer
from tests.support.login import add_protocol_stand_in
from tests.support.oidc import make_account, make_unit
from tests.support.smtp import SmtpSink, code_in

pytestmark = pytest.mark.browser

EMAIL = "anna-lena@corp-einkauf.example"

OVERLAPS = """() => {
  const out = [];
  for (const dt of document.querySelectorAll('.ug-scope dt')) {
    const dd = dt.nextElementSibling;
    const a = dt.getBoundingClientRect(), b = dd.getBoundingClientRect();
    const sameRow = a.top < b.bottom && b.top < a.bottom;
    if (sameRow && a.right > b.left + 0.5) out.push(dt.textContent + ' overlaps ' + dd.textContent);
    if (dt.scrollWidth > dt.clientWidth + 1) out.push(dt.textContent + ' overflows its box');
  }
  return out;
}"""

ADDRESS_LINES = """() => [...document.querySelectorAll('.ug-address')].map(e => {
  const line = parseFloat(getComputedStyle(e).lineHeight) || 24;
  const lines = Math.round(e.getBoundingClientRect().height / line);
  e.style.whiteSpace = 'nowrap';
  const wide = e.getBoundingClientRect().width;
  e.style.whiteSpace = '';
  return {fits: wide <= e.parentElement.clientWidth, lines: lines};
})"""


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink) -> dict[str, object]:
    return {"smtp_url": smtp_server.url}


@pytest.fixture
def stand_in(app: Flask) -> Flask:
    add_protocol_stand_in(app)
    ann = make_account(app, EMAIL)
    make_unit(app, ann, "Einkaufsgenossenschaft Süddeutscher Handwerksbetriebe eG",
              roles=["employee", "commercial_contact"])
    return app


def test_german_consent_at_phone_width_wraps_labels_and_keeps_addresses_whole(
    stand_in: Flask, live_server: LiveServer, smtp_server: SmtpSink, browser: Any,
    backend_name: str,
) -> None:
    context = browser.new_context(locale="de-DE", viewport={"width": 360, "height": 780})
    page = context.new_page()
    page.goto(f"{live_server.url}/_test/start?client_name=Office+Supplies+Ltd"
              "&scope=openid+profile+email+org")
    page.get_by_label("Berufliche E-Mail-Adresse").fill(EMAIL)
    page.get_by_role("button", name="Code senden").click()
    page.wait_for_url(re.compile(r"/code$"))
    shown = page.evaluate(ADDRESS_LINES)
    assert any(a["fits"] for a in shown), shown
    assert all(a["lines"] == 1 for a in shown if a["fits"]), shown
    page.get_by_label("Code", exact=True).fill(code_in(smtp_server.last_to(EMAIL)))
    page.get_by_role("button", name="Weiter").click()
    page.wait_for_url(re.compile(r"/consent$"))
    main = page.locator("main").inner_text()
    assert "Unternehmenskennung" not in main and "Mitarbeiter/in" in main
    assert page.evaluate(OVERLAPS) == []
    shown = page.evaluate(ADDRESS_LINES)
    assert any(a["fits"] for a in shown), shown
    assert all(a["lines"] == 1 for a in shown if a["fits"]), shown
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"consent-de-360-{backend_name}.png"), full_page=True)
    for width in (520, 1280):  # two columns: labels wrap in theirs
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(OVERLAPS) == [], width
    context.close()
