"""The console's domain and SSO pages in a real browser (headless Chromium, Playwright)
on the real server: a domain is added at phone width in German, its TXT record is
copied from the page into the test DNS server and the re-check verifies it; an OIDC
connector is set up against the real upstream provider process with the redirect
URI the guide shows, and its "test connection" button makes the round trip through
the upstream's sign-in and shows the claims, without signing anybody in."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask, g

from idp.interaction import sessions
from idp.store.db import db
from idp.store.models import Account, Domain, UpstreamIdentity
from tests.support.browser import SHOTS
from tests.support.dns import DnsServer
from tests.support.live import LiveServer
from tests.support.oidc import make_account, make_unit
from tests.support.upstream import Upstream

pytestmark = pytest.mark.browser


@pytest.fixture
def settings_overrides(live_port: int, dns_server: DnsServer) -> dict[str, object]:
    return {
        "issuer": f"http://127.0.0.1:{live_port}",
        "dns_resolver": dns_server.address,
        "dns_timeout_seconds": 0.5,
    }


@dataclass
class Console:
    """Ada, the main user of Acme, with browsers signed in on the live server."""

    app: Flask
    live: LiveServer
    unit: str
    open: Callable[..., Any]


@pytest.fixture
def console(app: Flask, live_server: LiveServer, browser: Any) -> Iterator[Console]:
    ada = make_account(app, "ada@acme.example")
    unit = make_unit(app, ada, "Acme", roles=["main_user"])
    contexts: list[Any] = []

    def open_(**options: Any) -> Any:
        """A browser context with a live session of Ada (what a finished login leaves
        behind)."""
        with app.test_request_context("/"):
            sessions.create(ada, ["otp"], "urn:unitgate:acr:email-otp")
            token = g.session_cookie
        context = browser.new_context(**options)
        context.add_cookies([{"name": sessions.COOKIE, "value": token, "url": live_server.url}])
        contexts.append(context)
        return context

    yield Console(app, live_server, unit, open_)
    for context in contexts:
        context.close()


def test_a_domain_is_verified_against_the_test_dns_server_in_german_at_phone_width(
    console: Console, dns_server: DnsServer, backend_name: str
) -> None:
    app, live_server, unit = console.app, console.live, console.unit
    page = console.open(locale="de-DE", viewport={"width": 360, "height": 780}).new_page()
    page.goto(f"{live_server.url}/admin/units/{unit}/domains")
    page.get_by_label("Domain", exact=True).fill("acme.example")
    page.get_by_role("button", name="Domain hinzufügen").click()
    page.wait_for_load_state()
    assert "acme.example wurde hinzugefügt" in page.locator("main").inner_text()
    name = page.locator("input[id^=rec-name]").input_value()
    value = page.locator("input[id^=rec-value]").input_value()
    assert name == "_unitgate-challenge.acme.example"
    assert page.locator("[data-state=pending]").count() == 1
    # nothing wider than the phone: the record's value stays inside its box
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    dns_server.set_txt(name, value)
    page.get_by_role("button", name="Jetzt prüfen").click()
    page.wait_for_load_state()
    assert "acme.example ist bestätigt" in page.locator("main").inner_text()
    assert page.locator("[data-state=verified]").count() == 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"console-domains-de-360-{backend_name}.png"), full_page=True)
    with app.app_context():
        row = db.session.query(Domain).filter_by(name="acme.example").one()
        assert row.state == "verified" and row.verified_method == "dns"


def test_an_oidc_connector_is_set_up_against_the_upstream_and_its_test_succeeds(
    console: Console, upstream: Upstream, backend_name: str
) -> None:
    app, live_server, unit = console.app, console.live, console.unit
    context = console.open(locale="en-GB")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/units/{unit}/sso")
    page.get_by_role("link", name="Other OpenID Connect provider").click()
    redirect_uri = page.get_by_role(
        "textbox", name="Register this redirect URI (callback URL) there:"
    ).input_value()
    assert re.fullmatch(
        rf"{re.escape(live_server.url)}/federation/[0-9a-f]{{32}}/callback", redirect_uri
    )
    # the progressive "Copy" button puts the URI on the clipboard
    page.get_by_role("button", name="Copy: Register this redirect URI").click()
    assert page.evaluate("navigator.clipboard.readText()") == redirect_uri
    client_id, secret = upstream.register_client(upstream.plain_issuer, redirect_uri)
    page.get_by_label("Issuer URL").fill(upstream.plain_issuer)
    page.get_by_label("Client ID").fill(client_id)
    page.get_by_label("Client secret").fill(secret)
    page.get_by_role("button", name="Add connector").click()
    page.wait_for_load_state()
    assert "The connector was added" in page.locator("main").inner_text()
    assert (
        page.get_by_role("textbox", name="Redirect URI (callback URL)").input_value()
        == redirect_uri
    )
    with app.app_context():
        accounts = db.session.query(Account).count()
    upstream.login_as(
        "p-tess",
        {
            "email": "tess@acme.example",
            "email_verified": True,
            "given_name": "Tess",
            "family_name": "Tester",
        },
    )
    page.get_by_role("button", name="Test connection").click()
    page.wait_for_url(re.compile(r"/admin/units/.+/sso/[0-9a-f]{32}\?result="))
    text = page.locator("main").inner_text()
    assert "The connection works" in text
    assert "p-tess" in text and "tess@acme.example" in text and "Tester" in text
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"console-sso-test-{backend_name}.png"), full_page=True)
    # the admin is still herself, and the test created and linked nothing
    page.goto(f"{live_server.url}/admin/units/{unit}/sso")
    assert page.get_by_role("heading", name="SSO connectors").count() == 1
    with app.app_context():
        assert db.session.query(Account).count() == accounts
        assert db.session.query(UpstreamIdentity).count() == 0
