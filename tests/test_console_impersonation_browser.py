"""Impersonation from the console in a real browser (headless Chromium via
Playwright) on the real server (issue 14's test "an impersonation with a reason,
shown with its banner and in the person's own transactions"): a main user whose
unit grants them ``impersonate`` (a custom group: it is never part of a main user's
role) opens a colleague's access, logs in as them with a reason, sees the banner on
the following pages, ends it; then the colleague signs in and finds the
impersonation with its reason under "Who acted as you" on their dashboard."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from idp.accounts import accesses
from idp.rights import groups as rights_groups
from idp.store.db import db
from idp.store.models import Access, Impersonation
from idp.store.unit_of_work import atomic
from tests.support.browser import SHOTS, sign_in_by_code
from tests.support.live import LiveServer
from tests.support.oidc import make_account, make_unit
from tests.support.smtp import SmtpSink

ANN = "ann@corp.example"
BOB = "bob@corp.example"
REASON = "Ticket 4711: Bob cannot see his invoices"
BANNER = (
    "You (Ann Example <ann@corp.example>) are acting as Bob Baker <bob@corp.example> for Corp GmbH"
)
pytestmark = pytest.mark.browser


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink, live_port: int) -> dict[str, object]:
    return {"smtp_url": smtp_server.url, "issuer": f"http://127.0.0.1:{live_port}"}


def test_log_in_as_a_colleague_with_a_reason_then_they_see_it(
    app: Flask, live_server: LiveServer, smtp_server: SmtpSink, browser: Any,
    backend_name: str,
) -> None:
    ann = make_account(app, ANN)
    corp = make_unit(app, ann, "Corp GmbH", roles=["main_user"])
    bob = make_account(app, BOB, given_name="Bob", family_name="Baker")
    with app.app_context():
        rights_groups.set_group(corp, "support", ["impersonate"])
        with atomic():
            mine = db.session.query(Access).filter_by(account_id=ann, unit_id=corp).one()
            mine.roles = ["main_user", "support"]
            bob_access = accesses.create(bob, corp, ["employee"], "test", event=None).id

    context = browser.new_context(locale="en-GB", viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/")
    sign_in_by_code(page, ANN, smtp_server)
    page.wait_for_url(re.compile(rf"/admin/units/{corp}/accesses$"))
    page.goto(f"{live_server.url}/admin/units/{corp}/accesses/{bob_access}")
    section = page.locator("#impersonate")
    assert section.get_by_role("heading", name="Log in as Bob Baker").is_visible()

    # the reason is required: the browser does not send the empty form
    section.get_by_role("button", name="Log in as Bob Baker").click()
    assert page.url.endswith(f"/accesses/{bob_access}")
    section.get_by_label("Reason").fill(REASON)
    section.get_by_role("button", name="Log in as Bob Baker").click()
    page.wait_for_url(re.compile(r"/account$"))
    banner = page.get_by_role("status", name="Impersonation")
    assert BANNER in banner.inner_text()
    page.screenshot(path=str(SHOTS / f"console-impersonation-{backend_name}.png"),
                    full_page=True)
    # the banner stays on the following pages, and the console is closed meanwhile
    page.goto(f"{live_server.url}/account")
    assert BANNER in page.get_by_role("status", name="Impersonation").inner_text()
    response = page.goto(f"{live_server.url}/admin/")
    assert response is not None and response.status == 403
    assert BANNER in page.get_by_role("status", name="Impersonation").inner_text()

    # ending it: no banner any more, Ann is herself again
    page.get_by_role("status", name="Impersonation").get_by_role(
        "button", name="End now").click()
    page.wait_for_load_state()
    assert page.get_by_role("status", name="Impersonation").count() == 0
    page.goto(f"{live_server.url}/admin/units/{corp}/accesses")
    assert page.get_by_role("heading", name="Accesses", level=1).is_visible()
    with app.app_context():
        row = db.session.query(Impersonation).one()
        assert row.reason == REASON and row.target_account_id == bob
        assert row.ended_at is not None

    # Bob signs in and sees who acted as him, when, and why
    colleague = browser.new_context(locale="en-GB").new_page()
    colleague.goto(f"{live_server.url}/account")
    sign_in_by_code(colleague, BOB, smtp_server)
    colleague.wait_for_url(re.compile(r"/account$"))
    assert colleague.get_by_role("status", name="Impersonation").count() == 0
    acted = colleague.locator("#impersonations")
    assert acted.get_by_role("heading", name="Who acted as you").is_visible()
    text = acted.inner_text()
    assert "Ann Example" in text and "acted as you for Corp GmbH" in text
    assert f"reason: {REASON}" in text

    # and in German
    german = browser.new_context(locale="de-DE")
    german.add_cookies(colleague.context.cookies())
    seen = german.new_page()
    seen.goto(f"{live_server.url}/account")
    assert REASON in seen.locator("#impersonations").inner_text()
    assert "Ann Example" in seen.locator("#impersonations").inner_text()
