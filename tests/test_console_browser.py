"""The console in a real browser (headless Chromium via Playwright) on the real
server: a main user signs in at /admin with an e-mail code from a real SMTP server,
invites a colleague from the accesses page; the colleague registers through the
e-mail link and the SMS code (a real local HTTP gateway) and then shows as active in
the list. Then CSV export and import through the page. Screenshots in English and
German, wide and at 360 px, go to ``test-results/browser/``."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from idp.accounts import import_jobs
from idp.store.db import db
from idp.store.models import Access, Account
from tests.support.browser import SHOTS, sign_in_by_code
from tests.support.live import LiveServer
from tests.support.oidc import make_account, make_unit
from tests.support.sms import SmsReceiver
from tests.support.smtp import SmtpSink, text_of

ANN = "ann@corp.example"
NINA = "nina@corp.example"
LINK_RE = re.compile(r"(http://127\.0\.0\.1:\d+/invitation/[A-Za-z0-9_\-]+)")
SMS_CODE_RE = re.compile(r": ([A-Z0-9]{8})$")
pytestmark = pytest.mark.browser


@pytest.fixture
def settings_overrides(
    smtp_server: SmtpSink, gateway: SmsReceiver, live_port: int
) -> dict[str, object]:
    return {"smtp_url": smtp_server.url, "sms_url": gateway.url, "sms_token": "gw-secret",
            "issuer": f"http://127.0.0.1:{live_port}"}


def fits_phone(page: Any) -> bool:
    """Whether the page has no horizontal scrolling at its current (phone) width
    (the elements sticking out are printed when it has)."""
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
        .map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' +
             Math.round(e.getBoundingClientRect().right)).slice(0, 12)""")
    fits = bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))
    assert fits, wide
    return fits


def shoot(page: Any, name: str, backend_name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"console-{name}-{backend_name}.png"), full_page=True)


def test_invite_a_colleague_who_registers_then_export_and_import(
    app: Flask, live_server: LiveServer, smtp_server: SmtpSink, gateway: SmsReceiver,
    browser: Any, backend_name: str, tmp_path: Path,
) -> None:
    ann = make_account(app, ANN)
    corp = make_unit(app, ann, "Corp GmbH", roles=["main_user"])
    context = browser.new_context(locale="en-GB", viewport={"width": 1100, "height": 900},
                                  accept_downloads=True)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/")
    assert re.search(r"/interaction/[\w-]+$", page.url)
    sign_in_by_code(page, ANN, smtp_server)
    page.wait_for_url(re.compile(rf"/admin/units/{corp}/accesses$"))
    assert page.get_by_role("heading", name="Accesses", level=1).is_visible()
    assert page.get_by_role("navigation", name="Administration of Corp GmbH").is_visible()

    # the skip link is the first stop of the keyboard
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"

    # invite Nina with a mobile number: an e-mail link and an SMS code
    form = page.locator("#invite")
    form.get_by_label("E-mail address").fill(NINA)
    form.get_by_label("Given name").fill("Nina")
    form.get_by_label("Family name").fill("Neumann")
    form.get_by_label("Mobile number").fill("+49 151 2345 6789")
    form.get_by_label("Employee").check()
    form.get_by_label("Yes: invite them to register and sign in").check()
    form.get_by_role("button", name="Invite or link").click()
    page.wait_for_url(re.compile(rf"/admin/units/{corp}/accesses"))
    assert f"{NINA} was invited." in page.get_by_role("status").inner_text()
    row = page.locator("#accesses tr", has_text=NINA)
    assert "Invited" in row.inner_text()
    shoot(page, "accesses-en", backend_name)

    link = LINK_RE.search(text_of(smtp_server.last_to(NINA)))
    assert link, text_of(smtp_server.last_to(NINA))
    sms = SMS_CODE_RE.search(gateway.wait_for(1)[0].json()["text"])
    assert sms
    colleague = browser.new_context(locale="en-GB").new_page()
    colleague.goto(link.group(1))
    colleague.get_by_label("Registration code").fill(sms.group(1))
    colleague.get_by_role("button", name="Continue").click()
    colleague.wait_for_url(re.compile(r"/profile$"))
    colleague.get_by_role("button", name="Save and continue").click()
    colleague.wait_for_url(re.compile(r"/account$"))

    page.goto(f"{live_server.url}/admin/units/{corp}/accesses?status=active")
    row = page.locator("#accesses tr", has_text=NINA)
    assert "Active" in row.inner_text() and "Nina Neumann" in row.inner_text()

    # CSV export through the link, then an import of a changed copy
    with page.expect_download() as download:
        page.get_by_role("link", name="Export as CSV", exact=True).click()
    exported = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert {r["email"] for r in rows} == {ANN, NINA}
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["email", "given_name", "family_name", "roles",
                                             "platform_access"])
    writer.writeheader()
    writer.writerow({"email": "otto@corp.example", "given_name": "Otto",
                     "family_name": "Ortmann", "roles": "employee", "platform_access": "false"})
    writer.writerow({"email": "not an address", "given_name": "X", "family_name": "Y",
                     "roles": "employee", "platform_access": "false"})
    source = tmp_path / "people.csv"
    source.write_text(out.getvalue(), encoding="utf-8")
    page.locator("#file").set_input_files(str(source))
    page.get_by_role("button", name="Import", exact=True).click()
    # the progress page answers at once and refreshes itself (no script) until a
    # worker, started only now, has run the import; then it shows the report
    page.wait_for_url(re.compile(r"/accesses/imports/\w+$"))
    assert "0 of 2 rows done." in page.locator("#import-progress").inner_text()
    worker = import_jobs.start_thread(app, interval=0.2)
    try:
        page.locator("#import-result").wait_for(timeout=20000)
    finally:
        worker.stop()
    assert "2 of 2 rows done." in page.locator("#import-progress").inner_text()
    progress_url = page.url
    result = page.locator("#import-result").inner_text()
    assert "Import result" in result and "not an address" in result
    page.get_by_role("link", name="Back to the accesses").click()
    assert "otto@corp.example" in page.locator("#accesses").inner_text()
    with app.app_context():
        otto = db.session.query(Account).filter_by(email="otto@corp.example").one()
        assert db.session.query(Access).filter_by(account_id=otto.id, unit_id=corp).one()

    # German, and a phone's width without sideways scrolling
    german = browser.new_context(locale="de-DE", viewport={"width": 360, "height": 800})
    german.add_cookies(context.cookies())
    phone = german.new_page()
    phone.goto(f"{live_server.url}/admin/units/{corp}/accesses")
    assert phone.locator("html").get_attribute("lang") == "de"
    assert phone.get_by_role("heading", name="Zugänge", level=1).is_visible()
    assert fits_phone(phone)
    shoot(phone, "accesses-de-phone", backend_name)
    phone.goto(progress_url)
    assert "2 von 2 Zeilen erledigt." in phone.locator("#import-progress").inner_text()
    assert fits_phone(phone)
    shoot(phone, "import-progress-de-phone", backend_name)
    phone.goto(f"{live_server.url}/admin/units/{corp}/accesses")
    nina_access = phone.locator("#accesses tr", has_text=NINA).get_by_role("link")
    nina_access.click()
    phone.wait_for_url(re.compile(r"/accesses/\w+$"))
    assert fits_phone(phone)
    shoot(phone, "access-de-phone", backend_name)
