"""A complete sign-in over real HTTP: authlib's OAuth client is the relying party,
``requests`` is the browser, the login pages are the real ones, and the one-time code
is read from a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from flask import Flask
from joserfc import jwt
from joserfc.jwk import KeySet
from werkzeug.serving import make_server

from tests.support import oidc
from tests.support.processes import free_port, wait_for_http
from tests.support.smtp import SmtpSink, code_in

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
EMAIL = "nina@corp.example"


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings_overrides(port: int, smtp_server: SmtpSink) -> dict[str, object]:
    return {"issuer": f"http://127.0.0.1:{port}", "smtp_url": smtp_server.url}


@pytest.fixture
def base_url(app: Flask, port: int) -> Iterator[str]:
    from idp.mail.outbox import courier

    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/healthz")
    yield url
    server.shutdown()
    thread.join(10)
    server.server_close()
    courier(app).drain()


def _csrf(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def browse_login(browser: requests.Session, base: str, first: requests.Response,
                 smtp: SmtpSink) -> requests.Response:  # fmt: skip
    """Walk the login pages as an employee would until the browser is sent back to the
    relying party; returns that final redirect (not followed)."""
    resp = first
    for _ in range(12):
        assert resp.status_code == 303, (resp.status_code, resp.text[:500])
        target = urljoin(base, resp.headers["Location"])
        if not target.startswith(base):
            return resp
        path = urlsplit(target).path
        if path.startswith("/authorize/resume/"):
            resp = browser.get(target, allow_redirects=False)
            continue
        page = browser.get(target, allow_redirects=False)
        assert page.status_code == 200, (path, page.status_code)
        data: dict[str, Any] = {"csrf_token": _csrf(page.text)}
        if path.endswith("/code"):
            data["code"] = code_in(smtp.last_to(EMAIL))
            action = path
        elif path.endswith("/profile"):
            data.update(given_name="Nina", family_name="Neu", cost_centre="CC-7")
            action = path
        elif path.endswith("/consent"):
            data["decision"] = "allow"
            action = path
        else:  # the e-mail page
            data["email"] = EMAIL
            action = path + "/email"
        resp = browser.post(urljoin(base, action), data=data, allow_redirects=False)
    raise AssertionError("the login pages never sent the browser back")


def test_full_sign_in_with_authlib_client(app: Flask, base_url: str,
                                          smtp_server: SmtpSink) -> None:  # fmt: skip
    rp = oidc.register(app, scope="openid profile email wallet")
    meta = requests.get(base_url + "/.well-known/openid-configuration", timeout=10).json()
    assert meta["issuer"] == base_url
    session = OAuth2Session(
        rp.client_id, rp.secret, scope="openid profile email wallet",
        redirect_uri=rp.redirect_uri, code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )  # fmt: skip
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(12)
    url, state = session.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce, login_hint=EMAIL
    )
    browser = requests.Session()
    first = browser.get(url, allow_redirects=False, timeout=10)
    back = browse_login(browser, base_url, first, smtp_server)
    callback = back.headers["Location"]
    assert callback.startswith(rp.redirect_uri + "?")

    token = session.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier,
        state=state,
    )  # fmt: skip
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    decoded = jwt.decode(token["id_token"], keys, algorithms=["ES256", "RS256"])
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={"iss": {"essential": True, "value": base_url},
                 "aud": {"essential": True, "value": rp.client_id}},
        params={"nonce": nonce, "client_id": rp.client_id,
                "access_token": token["access_token"]},
    )  # fmt: skip
    claims.validate()
    assert claims["iss"] == base_url and claims["aud"] == rp.client_id

    info = session.get(meta["userinfo_endpoint"], timeout=10).json()
    assert info["sub"] == claims["sub"]
    assert info["email"] == EMAIL and info["given_name"] == "Nina"
    assert info["cost_centre"] == "CC-7"

    # A second sign-in reuses the session and the consent: no login pages at all.
    url2, _ = session.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce="n2"
    )
    again = browser.get(url2, allow_redirects=False, timeout=10)
    assert again.status_code == 303
    assert again.headers["Location"].startswith(rp.redirect_uri + "?code=")
