"""A complete sign-in over real HTTP: authlib's OAuth client is the relying party,
``requests`` is the browser, the login pages are the real ones, and the one-time code
is read from a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import secrets

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from flask import Flask
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support import oidc
from tests.support.live import LiveServer
from tests.support.live_oidc import EMAIL, browse_login
from tests.support.smtp import SmtpSink


@pytest.fixture
def settings_overrides(live_port: int, smtp_server: SmtpSink) -> dict[str, object]:
    return {"issuer": f"http://127.0.0.1:{live_port}", "smtp_url": smtp_server.url}


def test_full_sign_in_with_authlib_client(app: Flask, live_server: LiveServer,
                                          smtp_server: SmtpSink) -> None:  # fmt: skip
    base_url = live_server.url
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
    assert "cost_centre" not in info  # no unit, no employer facts (they are per access)

    # A second sign-in reuses the session and the consent: no login pages at all.
    url2, _ = session.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce="n2"
    )
    again = browser.get(url2, allow_redirects=False, timeout=10)
    assert again.status_code == 303
    assert again.headers["Location"].startswith(rp.redirect_uri + "?code=")
