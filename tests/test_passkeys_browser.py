"""Passkeys in a real browser: Debian's Chromium with a CDP virtual authenticator
(CTAP2, internal transport, resident keys, user verification) against a live server
whose issuer is ``http://localhost:<port>`` (WebAuthn needs a secure context and an RP
ID equal to the page's host; ``localhost`` is both). Register on the dashboard, sign
out, sign in with the passkey button (``amr`` ``hwk`` + ``user``), use it as the second
factor where the unit requires TOTP, refuse a counter reset by CDP, remove it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask

from idp.store.db import db
from idp.store.models import AuditEvent, Unit
from tests.support.live import LiveServer
from tests.support.login import add_protocol_stand_in
from tests.support.oidc import make_account, make_unit
from tests.support.smtp import SmtpSink, code_in

EMAIL = "ann@corp.example"
pytestmark = pytest.mark.browser


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink, live_port: int) -> dict[str, object]:
    return {"smtp_url": smtp_server.url, "issuer": f"http://localhost:{live_port}"}


@pytest.fixture
def stand_in(app: Flask) -> tuple[str, str]:
    add_protocol_stand_in(app)  # before the live server's first request
    account_id = make_account(app, EMAIL)
    return account_id, make_unit(app, account_id, "Corp GmbH")


def resume_state(page: Any) -> dict[str, Any]:
    page.wait_for_url(re.compile(r"/_test/resume/"))
    return dict(json.loads(page.locator("body").inner_text()))


def allow_consent(page: Any) -> None:
    page.wait_for_url(re.compile(r"/consent$|/_test/resume/"))
    if page.url.endswith("/consent"):
        page.get_by_role("button", name="Allow").click()


def test_register_sign_in_second_factor_counter_and_remove(
    stand_in: tuple[str, str], app: Flask, live_server: LiveServer, smtp_server: SmtpSink,
    browser: Any, live_port: int,
) -> None:
    base = f"http://localhost:{live_port}"
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }})["authenticatorId"]

    # sign in to the dashboard with an e-mail code and add a passkey
    page.goto(f"{base}/account")
    assert page.locator("#email").get_attribute("autocomplete") == "username webauthn"
    assert page.get_by_role("button", name="Sign in with a passkey").is_visible()
    page.get_by_label("Work e-mail address").fill(EMAIL)
    page.get_by_role("button", name="Send code").click()
    page.wait_for_url(re.compile(r"/code$"))
    page.get_by_label("Code", exact=True).fill(code_in(smtp_server.last_to(EMAIL)))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/account$"))
    page.get_by_label("Name of the new passkey").fill("Test laptop")
    page.get_by_role("button", name="Add a passkey").click()
    page.wait_for_url(re.compile(r"/account#passkeys$"))
    page.get_by_text("Your passkey was added.").wait_for()
    assert page.locator("#passkey-list input[name=name]").input_value() == "Test laptop"
    assert "Bound to this device" in page.locator("#passkey-list").inner_text()
    [stored] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})[
        "credentials"]
    assert stored["isResidentCredential"] is True and stored["rpId"] == "localhost"

    # sign out, sign in at a merchant with the passkey instead of a code: the e-mail
    # page's conditional request (mediation "conditional") is answered by the virtual
    # authenticator, which picks its only passkey without a click
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{base}/_test/start?prompt=login")
    allow_consent(page)
    state = resume_state(page)
    assert state["finished"] is True and state["account_id"] == stand_in[0]
    assert state["amr"] == ["hwk", "user", "mfa"]

    # the unit requires TOTP: after an e-mail code, the passkey is the second factor
    with app.app_context():
        db.session.get(Unit, stand_in[1]).require_totp = True  # type: ignore[union-attr]
        db.session.commit()
    # (the authenticator answers nothing by itself now: the conditional request waits)
    cdp.send("WebAuthn.setAutomaticPresenceSimulation",
             {"authenticatorId": authenticator, "enabled": False})
    page.goto(f"{base}/_test/start?prompt=login")
    page.get_by_label("Work e-mail address").fill(EMAIL)
    page.get_by_role("button", name="Send code").click()
    page.wait_for_url(re.compile(r"/code$"))
    page.get_by_label("Code", exact=True).fill(code_in(smtp_server.last_to(EMAIL)))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/totp(/setup)?$"))
    cdp.send("WebAuthn.setAutomaticPresenceSimulation",
             {"authenticatorId": authenticator, "enabled": True})
    page.get_by_role("button", name="Use a passkey instead").click()
    allow_consent(page)
    state = resume_state(page)
    assert state["amr"] == ["otp", "hwk", "user", "mfa"]
    assert state["acr"] == "urn:unitgate:acr:mfa"

    # a counter that goes backwards (the credential re-added with counter 0) is refused
    [stored] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})[
        "credentials"]
    assert stored["signCount"] >= 2
    cdp.send("WebAuthn.removeCredential", {"authenticatorId": authenticator,
                                           "credentialId": stored["credentialId"]})
    stored["signCount"] = 0
    cdp.send("WebAuthn.addCredential", {"authenticatorId": authenticator,
                                        "credential": stored})
    page.goto(f"{base}/_test/start?prompt=login")  # the conditional request answers
    page.locator("#passkey-error").wait_for()
    assert "may have been copied" in page.locator("#passkey-error").inner_text()
    assert page.locator("#passkey-form").get_attribute("data-passkey-conditional") is None
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in with a passkey").click()
    assert "may have been copied" in page.locator("#passkey-error").inner_text()
    with app.app_context():
        assert db.session.query(AuditEvent).filter_by(
            action="passkey.counter_regressed").count() == 2

    # the counter moves on past the stored value again: sign in to the dashboard, remove it
    stored["signCount"] = 1000
    cdp.send("WebAuthn.removeCredential", {"authenticatorId": authenticator,
                                           "credentialId": stored["credentialId"]})
    cdp.send("WebAuthn.addCredential", {"authenticatorId": authenticator,
                                        "credential": stored})
    page.goto(f"{base}/account")  # the conditional request signs in again
    page.wait_for_url(re.compile(r"/account$"))
    page.get_by_role("button", name="Remove").click()
    page.get_by_text("The passkey was removed.").wait_for()
    assert page.locator("#passkey-none").is_visible()
    context.close()
