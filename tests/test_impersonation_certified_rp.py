"""Impersonation seen by an independent, OpenID Certified relying party (the npm
package ``openid-client``, tests/upstream/rp.js): while Carl acts as Ann, the ID
token, the refreshed ID token and userinfo the library validated carry
``act: {"sub": <Carl>}``; after Carl ends it, his own sign-in carries no ``act``.
The impersonation is started over real HTTP with the API's session + CSRF header."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from flask import Flask

from idp.interaction import sessions
from idp.release import consent, merchants
from tests.support import oidc
from tests.support.live import LiveServer
from tests.support.login import CSRF_RE
from tests.support.smtp import SmtpSink
from tests.test_impersonation import world
from tests.test_oidc_certified_rp import POST_LOGOUT, NodeRP

SCOPES = ["openid", "profile", "email", "wallet"]


@pytest.fixture
def settings_overrides(live_port: int, smtp_server: SmtpSink) -> dict[str, object]:
    return {"issuer": f"http://127.0.0.1:{live_port}", "smtp_url": smtp_server.url}


def _signed_in_browser(app: Flask, base_url: str, account_id: str) -> tuple[requests.Session, str]:
    """A browser with a live session of ``account_id`` (what a finished login leaves
    behind) and the CSRF token of its dashboard page."""
    with app.test_request_context("/"):
        from flask import g

        sessions.create(account_id, ["otp"], "urn:unitgate:acr:email-otp")
        token = g.session_cookie
    browser = requests.Session()
    browser.cookies.set(sessions.COOKIE, token, domain="127.0.0.1", path="/")
    page = browser.get(base_url + "/account", allow_redirects=False, timeout=10)
    assert page.status_code == 200, page.status_code
    found = CSRF_RE.search(page.text)
    assert found is not None
    return browser, found.group(1)


def _through_consent(browser: requests.Session, base: str,
                     resp: requests.Response) -> requests.Response:  # fmt: skip
    """Follow Unitgate's redirects, allowing on the consent page, until the browser is
    sent back to the relying party; that redirect (not followed). Any other page (a
    login page asking for a code) fails the test."""
    for _ in range(8):
        if resp.status_code == 303:
            target = urljoin(base, resp.headers["Location"])
            if not target.startswith(base):
                return resp
            resp = browser.get(target, allow_redirects=False, timeout=10)
            continue
        assert resp.status_code == 200, resp.status_code
        path = urlsplit(resp.url).path
        assert path.endswith("/consent"), (path, resp.text[:300])
        found = CSRF_RE.search(resp.text)
        assert found is not None
        resp = browser.post(urljoin(base, path), allow_redirects=False, timeout=10,
                            data={"csrf_token": found.group(1), "decision": "allow"})
    raise AssertionError("never sent back to the relying party")


def _sign_in_at_rp(base_url: str, rp: oidc.RP, browser: requests.Session,
                   hint: str) -> dict[str, Any]:  # fmt: skip
    """One sign-in of openid-client; the browser's live session answers, through the
    consent page when the person has not consented yet (no code is asked for)."""
    node = NodeRP(base_url, rp.client_id, str(rp.secret), rp.redirect_uri, POST_LOGOUT, hint)
    try:
        authorize = node.receive()["authorize"]
        first = browser.get(authorize, allow_redirects=False, timeout=10)
        back = _through_consent(browser, base_url, first)
        assert back.status_code == 303, back.text[:300]
        assert back.headers["Location"].startswith(rp.redirect_uri), back.headers["Location"]
        node.send({"callback": back.headers["Location"]})
        result: dict[str, Any] = node.receive()["result"]
        return result
    finally:
        node.close()


def test_openid_client_sees_act_during_impersonation_and_not_after(
    app: Flask, live_server: LiveServer, smtp_server: SmtpSink
) -> None:
    base_url = live_server.url
    ids = world(app)
    rp = oidc.register(app, scope=" ".join(SCOPES), post_logout_redirect_uris=[POST_LOGOUT])
    oidc.grant_consent(app, ids["carl"], rp.client_id, SCOPES)  # Ann's: on the way
    with app.app_context():
        merchant = merchants.of_client(rp.client_id)
        assert merchant is not None and not consent.granted_scopes(ids["ann"], merchant.id)
    browser, csrf = _signed_in_browser(app, base_url, ids["carl"])
    started = browser.post(
        f"{base_url}/api/v1/units/{ids['sales']}/accesses/{ids['ann_access']}/impersonation",
        json={"reason": "Ticket 4711"}, headers={"X-CSRF-Token": csrf}, timeout=10,
    )
    assert started.status_code == 201, started.text

    sent = len(smtp_server.messages)
    during = _sign_in_at_rp(base_url, rp, browser, "ann@acme.example")
    assert during["claims"]["sub"] == ids["ann"]
    assert during["claims"]["act"] == {"sub": ids["carl"]}
    assert during["userinfo"]["act"] == {"sub": ids["carl"]}
    assert during["refreshed_claims"]["act"] == {"sub": ids["carl"]}
    assert during["introspection"]["act"] == {"sub": ids["carl"]}
    # the consent page was passed as Ann (a code page would fail the walk), and no
    # sign-in code was sent to her; that consent was for this sign-in only, never
    # stored as Ann's own
    with app.app_context():
        assert consent.granted_scopes(ids["ann"], merchant.id) == set()
    codes = [m for m in smtp_server.messages[sent:] if "code" in str(m["Subject"]).lower()]
    assert codes == []

    ended = browser.post(f"{base_url}/account/impersonation/end", data={"csrf_token": csrf},
                         allow_redirects=False, timeout=10)  # fmt: skip
    assert ended.status_code == 303

    after = _sign_in_at_rp(base_url, rp, browser, "carl@acme.example")
    assert after["claims"]["sub"] == ids["carl"]
    assert "act" not in after["claims"] and "act" not in after["userinfo"]
