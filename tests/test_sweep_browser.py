"""The browser quality sweep of issues 14 and 16: headless Chromium (Playwright) walks
every page, in German and English and at 360 px and 1280 px, and each page passes the
checks of :mod:`tests.support.sweep`: no serious or critical axe-core violation, no
text beyond its box or the viewport, and (German) no string from outside the catalogue.

The pages: the start page; the sign-in journey (e-mail, code, too many tries, company
choice, first-sign-in profile, consent, TOTP set-up and code, password sign-in, the
invitation and its ended link, the expired link after the back button, error pages,
signed out); then, signed in as a company's main user and as an operator's staff
member, a bounded breadth-first crawl of every GET link under ``/account`` and
``/admin/``, so that console pages added later are swept without changing this test.

One browser, one server; it runs once (on SQLite): the pages do not depend on the
storage backend, and the suite has the other backend's page tests.
"""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest
from flask import Flask

from idp.accounts import invites
from idp.accounts import lifecycle as accounts
from idp.cli import main
from idp.factors import passwords, totp
from idp.rights import SYSTEM
from idp.rights import staff as staff_members
from tests.support.backends import missing
from tests.support.live import LiveServer
from tests.support.login import add_protocol_stand_in
from tests.support.oidc import make_account, make_unit
from tests.support.purchases import Shop, merchant, token
from tests.support.smtp import SmtpSink, code_in, text_of
from tests.support.sweep import (
    AXE,
    LANGUAGES,
    Sweep,
    new_context,
    shape,
    untranslated,
    with_lang,
)

pytestmark = pytest.mark.browser

MAIN = "ann.main@corp-einkauf.example"  # main user of Corp GmbH, member of two companies
NEW = "neu@corp-einkauf.example"  # first sign-in: the profile page
TOTP_NEW = "tom@corp-einkauf.example"  # TOTP required, not set up
TOTP_SET = "tia@corp-einkauf.example"  # TOTP required and set up
PASSWORD_USER = "pia@corp-einkauf.example"
INVITEE = "nina@corp-einkauf.example"
STAFF = "sam@operator.example"
PASSWORD = "Amber-Lighthouse-Quill-31"
CLIENT = "Office Supplies Ltd"
UNITS = ("Corp GmbH", "Corp Logistics", "Secure Corp")
DATA = [
    "Berlin",  # the unit's own fields: their German labels, help and choices are data
    "Hamburg",
    "Lieferort",
    "Wohin Ihre Bestellungen gehen.",
    "Einkaufslimit (EUR)",
    "Travel & Hotels",
    "PO-80",
    "CH-1",
    "Bürostuhl",
    MAIN,
    NEW,
    TOTP_NEW,
    TOTP_SET,
    PASSWORD_USER,
    INVITEE,
    STAFF,
    CLIENT,
    *UNITS,
    "Ann",
    "Example",
    "Nina",
    "Neu",
    "Sam",
    "Tom",
    "Tia",
    "Pia",
    "Corp",
    "corp-gmbh",
    "corp-logistics",
    "secure-corp",
    "shop-1",
    "Deutsch",  # the language switch names each language in itself (idp.i18n)
]
CRAWL = {"main user": 24, "staff": 12}  # pages each: the bound of the crawl
START = "/_test/start?client_name=Office+Supplies+Ltd&scope=openid+profile+email+org"


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink) -> dict[str, object]:
    return {
        "smtp_url": smtp_server.url,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8192,
        "platform_staff": STAFF,  # the operator console's platform-wide pages too
    }


@pytest.fixture
def people(app: Flask, backend_name: str) -> dict[str, str]:
    if backend_name != "sqlite-sql":
        pytest.skip("the sweep runs once: the pages do not depend on the storage backend")
    if not AXE.exists():
        missing("axe-core is not installed: run `npm ci` in tests/browser")
    add_protocol_stand_in(app)
    ann = make_account(app, MAIN)
    corp = make_unit(app, ann, "Corp GmbH", roles=["main_user", "employee", "commercial_contact"])
    make_unit(app, ann, "Corp Logistics", roles=["employee"])
    tom = make_account(app, TOTP_NEW, given_name="Tom")
    secure = make_unit(app, tom, "Secure Corp", roles=["employee"])
    tia = make_account(app, TOTP_SET, given_name="Tia")
    pia = make_account(app, PASSWORD_USER, given_name="Pia")
    make_account(app, STAFF, given_name="Sam")
    with app.app_context():
        from idp.accounts import accesses
        from idp.store.unit_of_work import atomic

        with atomic():
            accesses.create(tia, secure, ["employee"], "test", event=None)
            accesses.create(pia, corp, ["employee"], "test", event=None)
        totp.set_unit_policy("secure-corp", True, "test")
        passwords.set_unit_policy("corp-gmbh", True, "test")
        account = accounts.get(pia)
        assert account is not None
        passwords.set_own(account, PASSWORD, via="password")
        tia_account = accounts.get(tia)
        assert tia_account is not None
        secret = totp.begin_enrolment(tia_account)
        assert secret is not None
        result = totp.verify(tia, "sweep-setup", pyotp.TOTP(secret).now(), confirm=True)
        assert result.outcome == totp.Outcome.OK, result
        staff_members.add(STAFF)
        staff_members.assign(STAFF, "corp-gmbh", "administrator")
        invites.add_contact(
            corp,
            invites.NewContact(
                email=INVITEE,
                given_name="Nina",
                family_name="Neu",
                mobile=None,
                roles=["employee"],
                platform_access=True,
            ),
            SYSTEM,
        )
    for field in (  # unit-defined fields with their German labels and help
        [
            "--name",
            "ship_to",
            "--label",
            "Delivery site",
            "--label-de",
            "Lieferort",
            "--type",
            "choice",
            "--choice",
            "Berlin",
            "--choice",
            "Hamburg",
            "--required",
            "--help-en",
            "Where your orders go.",
            "--help-de",
            "Wohin Ihre Bestellungen gehen.",
        ],
        [
            "--name",
            "purchase_limit",
            "--label",
            "Purchase limit",
            "--label-de",
            "Einkaufslimit",
            "--type",
            "money",
            "--currency",
            "EUR",
            "--set-by",
            "company",
        ],
    ):
        made = app.test_cli_runner().invoke(main, ["units", "fields", "add", "corp-gmbh", *field])
        assert made.exit_code == 0, made.output
    budget = app.test_cli_runner().invoke(
        main,
        [
            "budgets",
            "set",
            "--unit",
            "corp-gmbh",
            "--role",
            "employee",
            "--period",
            "month",
            "--amount",
            "100.00",
            "--per-order",
            "50.00",
            "--currency",
            "EUR",
            "--json",
        ],
    )
    assert budget.exit_code == 0, budget.output
    return {"corp": corp, "pia": pia}


def approval_link(app: Flask, smtp: SmtpSink, buyer: str, unit: str) -> str:
    """Pia buys over her per-order limit at a shop: the path of the approval page that
    the approver (the main user, a commercial contact) is mailed."""
    http = app.test_client()
    shop = Shop(http, token(app, http, merchant(app, "Travel & Hotels"), buyer, unit))
    after = len(smtp.wait_for(0))
    lines = [{"sku": "CH-1", "description": "Bürostuhl", "quantity": 1, "amount": "80.00"}]
    answer = shop.buy("80.00", order_ref="PO-80", lines=lines).get_json()
    assert answer["status"] == "pending_approval", answer
    found = re.search(
        r"(/account/approvals/[0-9a-f]{32}\?link=\S+)", text_of(smtp.last_to(MAIN, after=after))
    )
    assert found, "no approval link in the mail"
    return found.group(1)


def in_both(sweep: Sweep, page: Any, name: str, url: str, act: Any) -> None:
    """For each language: load ``url``, ``act`` on it (a form with a mistake), check
    the page it leads to (form errors are shown once: each language acts anew)."""
    for lang in LANGUAGES:
        page.goto(with_lang(url, lang))
        act(page)
        page.wait_for_load_state()
        sweep.check(page, name, lang)


def submit(page: Any, fields: dict[str, str], form: str = "form") -> None:
    """Fill ``fields`` and submit the first form, the browser's own checks off (the
    server's error messages are under test)."""
    page.evaluate("() => document.querySelectorAll('form').forEach(f => f.noValidate = true)")
    for name, value in fields.items():
        page.locator(f"{form} input[name={name}]").fill(value)
    page.locator(f"{form} button[type=submit]").first.click()


def email_code(page: Any, live: LiveServer, smtp: SmtpSink, email: str, start: str = START) -> None:
    """Start a sign-in and get to the code page of ``email``; leaves the code unused."""
    page.goto(live.url + start)
    page.locator("input[name=email]").fill(email)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/code$"))


def enter(page: Any, code: str) -> None:
    page.locator("input[name=code]").fill(code)
    page.locator("form button[type=submit]").first.click()


def sign_in(context: Any, live: LiveServer, smtp: SmtpSink, email: str) -> Any:
    """A page of ``context`` signed in to the dashboard as ``email``."""
    page = context.new_page()
    after = len(smtp.wait_for(0))
    email_code(page, live, smtp, email, start="/account")
    enter(page, code_in(smtp.last_to(email, after=after)))
    page.wait_for_url(re.compile(r"/account$"))
    return page


def test_every_page_in_both_languages_at_both_widths(
    people: dict[str, str],
    live_server: LiveServer,
    smtp_server: SmtpSink,
    browser: Any,
) -> None:
    live, smtp = live_server, smtp_server
    sweep = Sweep(data_values=DATA)
    context = new_context(browser)
    page = context.new_page()

    # Arriving without a merchant, and the pages of trouble.
    sweep.visit(page, "start page", live.url + "/")
    sweep.visit(page, "error: no such page", live.url + "/no-such-page", status=404)
    sweep.visit(
        page,
        "error: unknown client",
        live.url + "/authorize?client_id=nobody&response_type=code&scope=openid"
        "&redirect_uri=https%3A%2F%2Fshop.example%2Fcb",
        status=400,
    )
    sweep.visit(page, "expired sign-in link", live.url + "/interaction/gone", status=400)
    sweep.visit(
        page, "invitation: ended link", live.url + "/invitation/not-a-real-token", status=404
    )
    sweep.visit(page, "signed out", live.url + "/account/signed-out")
    sweep.visit(page, "logged out at a merchant", live.url + "/logout/done")
    sweep.visit(page, "sign out at a merchant: confirm", live.url + "/logout")

    # The invitation from the mail.
    link = re.search(r"/invitation/[A-Za-z0-9_\-]+", text_of(smtp.last_to(INVITEE)))
    assert link, "no invitation link in the mail"
    sweep.visit(page, "invitation", live.url + link.group(0))

    # The e-mail code journey of a main user with two companies.
    page.goto(live.url + START)
    sweep.visit(page, "sign-in: e-mail")
    in_both(
        sweep,
        page,
        "sign-in: e-mail, not an address",
        page.url,
        lambda p: submit(p, {"email": "not-an-address"}),
    )
    ldap_page = page.url.split("?")[0] + "/password"
    sweep.visit(page, "sign-in: company password (LDAP)", ldap_page)
    in_both(
        sweep,
        page,
        "sign-in: company password, wrong",
        ldap_page,
        lambda p: submit(p, {"email": MAIN, "password": "wrong-password-1"}),
    )
    page.goto(live.url + START)
    page.locator("input[name=email]").fill(MAIN)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/code$"))
    code_page = page.url
    sweep.visit(page, "sign-in: code")
    in_both(sweep, page, "sign-in: wrong code", code_page, lambda p: enter(p, "000000"))
    enter(page, code_in(smtp.last_to(MAIN)))
    page.wait_for_url(re.compile(r"/profile$"))  # the company's required field is empty
    sweep.visit(page, "sign-in: profile to complete")
    for choice in page.locator("select[required]").all():
        choice.select_option(index=1)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/unit$"))
    sweep.visit(page, "sign-in: company choice")
    page.locator("input[type=radio]").first.check()
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/consent$"))
    consent_page = page.url
    sweep.visit(page, "sign-in: consent")
    page.locator("form button[type=submit]").first.click()
    page.wait_for_load_state()
    page.goto(consent_page)  # the back button after consent
    sweep.visit(page, "sign-in: back after consent")
    assert code_page

    # Too many wrong codes.
    fresh = new_context(browser)
    other = fresh.new_page()
    email_code(other, live, smtp, MAIN)
    for _ in range(10):  # until the page takes no more codes
        if not other.locator("input[name=code]").count():
            break
        enter(other, "000000")
        other.wait_for_url(re.compile(r"/code$"))
    assert not other.locator("input[name=code]").count()
    sweep.visit(other, "sign-in: too many tries")
    fresh.close()

    # After the code: the first sign-in's profile, two-step set-up, the two-step code.
    for email, ending, name, mistake in (
        (NEW, "/profile", "sign-in: first profile", {"given_name": "", "family_name": ""}),
        (TOTP_NEW, "/totp/setup", "sign-in: two-step set-up", {"code": "12"}),
        (TOTP_SET, "/totp", "sign-in: two-step code", None),
    ):
        fresh = new_context(browser)
        after_code = fresh.new_page()
        email_code(after_code, live, smtp, email)
        enter(after_code, code_in(smtp.last_to(email)))
        after_code.wait_for_url(re.compile(re.escape(ending) + "$"))
        sweep.visit(after_code, name)
        if mistake is not None:
            in_both(
                sweep,
                after_code,
                f"{name}, a mistake",
                after_code.url,
                lambda p, fields=mistake: submit(p, fields),
            )
        fresh.close()

    # Password sign-in.
    context.close()
    context = new_context(browser)
    page = context.new_page()
    page.goto(live.url + START)
    page.locator("a[href$='/sign-in-password']").click()
    page.wait_for_url(re.compile(r"/sign-in-password$"))
    sweep.visit(page, "sign-in: password")
    in_both(
        sweep,
        page,
        "sign-in: password, wrong",
        page.url,
        lambda p: submit(p, {"email": PASSWORD_USER, "password": "wrong-password-1"}),
    )
    context.close()

    # Signed in: the dashboard and the console, crawled; an approval waiting.
    link = approval_link(live.app, smtp, people["pia"], people["corp"])
    crawled: dict[str, list[str]] = {}
    for who, email in (("main user", MAIN), ("staff", STAFF)):
        signed = new_context(browser)
        page = sign_in(signed, live, smtp, email)
        crawled[who] = sweep.crawl(
            page,
            live.url,
            ["/account", "/admin/"],
            ("/account", "/admin"),
            who,
            limit=CRAWL[who],
            skip={shape(p) for p in crawled.get("main user", []) if p != "/account"},
        )
        if who == "main user":
            dashboard = live.url + "/account"
            in_both(
                sweep,
                page,
                "dashboard: two-step set-up",
                dashboard,
                lambda p: p.locator("form[action$='/two-step/setup'] button").click(),
            )
            page.goto(dashboard)
            page.locator("form[action$='/password/code'] button").click()
            page.wait_for_url(re.compile(r"/account"))
            sweep.visit(page, "dashboard: password by code", dashboard)
            in_both(
                sweep,
                page,
                "dashboard: password by code, wrong code",
                dashboard,
                lambda p: submit(
                    p,
                    {
                        "code": "000000",
                        "code_new_password": "Copper-Willow-Sonata-58",
                        "code_repeat_password": "Copper-Willow-Sonata-58",
                    },
                    "form[action$='/password/with-code']",
                ),
            )
        signed.close()
    assert "/account" in crawled["main user"] and "/account" in crawled["staff"]
    assert link.split("?")[0] in crawled["main user"], crawled  # the dashboard links it

    print(f"swept {len(sweep.visited)} page views:", *sweep.visited, sep="\n  ")
    assert not sweep.findings, (
        f"{len(sweep.findings)} findings on {len(sweep.visited)} page views:\n" + sweep.report()
    )


def test_the_catalogue_check_finds_english_and_lets_data_through() -> None:
    """The catalogue check can fail: an English sentence and an untranslated label are
    found; German catalogue strings, filled placeholders and data pass."""
    found = untranslated(
        [
            "Sign in to your account",
            "Purchase limit (EUR)",
            "Bei Ihrem Konto anmelden",
            "ann@corp.example",
            "12.03.2026, 14:05 MEZ",
            "9. Dez. 2026, 12:26 UTC",
            "80.00 EUR",
            "pending",
            "Corp GmbH",
            "  Weiter ",
        ],
        data_values=["Corp GmbH"],
    )
    assert found == ["Sign in to your account", "Purchase limit (EUR)", "pending"]


SELF_TEST = """<!doctype html><html lang="de"><head><title>Anmelden</title></head><body><main>
<h1>Anmelden</h1>
<p>Sign in to your account</p>
<p>Weiter</p>
<a href="#x" style="position: absolute; left: -999rem">Anmelden</a>
<div style="width: 120px; white-space: nowrap">Einkaufsgenossenschaft Süddeutscher
Handwerksbetriebe</div>
<div style="position: absolute; left: 300px; width: 200px">Abbrechen</div>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="20" height="20">
<label for="pw">Passwort</label> <input id="pw" type="password">
</main></body></html>"""


def test_the_page_checks_can_fail(browser: Any) -> None:
    """Each check finds what it is for on a page made to fail it: a missing alt text
    (axe, critical), text wider than its box, an element beyond the phone viewport,
    an unstyled text field, an English sentence on a German page."""
    if not AXE.exists():
        missing("axe-core is not installed: run `npm ci` in tests/browser")
    context = new_context(browser)
    page = context.new_page()
    page.set_content(SELF_TEST)
    sweep = Sweep()
    sweep.check(page, "self-test", "de")
    context.close()
    found = sweep.report()
    assert "axe critical image-alt" in found, found
    assert '@1280px: div "Einkaufsgenossenschaft' in found and "overflows its box" in found
    assert '@360px: div "Abbrechen" reaches beyond the viewport' in found, found
    assert '@1280px: div "Abbrechen" reaches' not in found, found
    assert 'a "Anmelden"' not in found, found  # off-screen on purpose (a skip link)
    assert "not from the catalogue: 'Sign in to your account'" in found, found
    assert "input#pw has the browser's own look" in found, found
    assert "'Weiter'" not in found and "'Anmelden'" not in found, found
