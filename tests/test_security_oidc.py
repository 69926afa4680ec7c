"""SECURITY.md, OIDC / OAuth clauses the protocol tests did not pin down on their own:
logout for an unknown client never redirects, keys named in JOSE headers of an
``id_token_hint`` are ignored, and every endpoint taking a token caps its size."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.oidc.verification import MAX_TOKEN_BYTES
from tests.support import oidc
from tests.support.login import code_from_outbox, submit_code, submit_email

TARGET = "https://rp.example/bye"


@pytest.fixture
def signed_in(app: Flask, client: FlaskClient) -> dict[str, Any]:
    return oidc.signed_in_with_session(app, client, TARGET)


has_session = oidc.has_session


def test_logout_for_an_unknown_client_never_redirects(
    app: Flask, client: FlaskClient, signed_in: dict[str, Any]
) -> None:
    """"unknown client ... gives an error page, never a redirect" — at the end-session
    endpoint, with and without a hint, and after the confirmation POST."""
    for params in (
        {"client_id": "no-such-client", "post_logout_redirect_uri": TARGET, "state": "s"},
        {"client_id": "no-such-client", "post_logout_redirect_uri": "https://evil.example/"},
        {"client_id": "no-such-client", "id_token_hint": signed_in["id_token"],
         "post_logout_redirect_uri": TARGET},
    ):
        page = client.get("/logout", query_string=params)
        assert page.status_code in (200, 400) and "Location" not in page.headers, params
        assert page.mimetype == "text/html"
        html = page.get_data(as_text=True)
        # (the language switcher keeps the query in a same-page link: not a target)
        assert not re.search(r'(href|action|content)="[^"]*https?://evil', html), html
        token = re.search(r'name="csrf_token" value="([^"]+)"', html)
        if token is not None:
            done = client.post("/logout", data={**params, "confirm": "yes",
                                                "csrf_token": token.group(1)})  # fmt: skip
            assert "Location" not in done.headers or not done.headers["Location"].startswith(
                ("https://", "http://", "//")), done.headers.get("Location")


def test_logout_hint_signed_with_a_key_named_in_its_header_never_redirects(
    app: Flask, client: FlaskClient, signed_in: dict[str, Any]
) -> None:
    """"ignore jwk/jku/x5u headers": an id_token_hint signed by the attacker's key
    that it embeds (jwk) or points to (jku, x5u) is a forged hint."""
    real = oidc.verify_jwt(client, signed_in["id_token"])
    attacker = ECKey.generate_key("P-256", private=True, auto_kid=True)
    public = attacker.as_dict(private=False)
    headers = [
        {"alg": "ES256", "kid": attacker.kid, "jwk": public},
        {"alg": "ES256", "kid": real.header["kid"], "jwk": public},
        {"alg": "ES256", "kid": attacker.kid, "jku": "https://evil.example/jwks.json"},
        {"alg": "ES256", "kid": real.header["kid"], "x5u": "https://evil.example/cert.pem"},
    ]
    for header in headers:
        forged = jwt.encode(header, real.claims, attacker)
        resp = client.get("/logout", query_string={
            "id_token_hint": forged, "post_logout_redirect_uri": TARGET})  # fmt: skip
        assert resp.status_code == 400 and "Location" not in resp.headers, header
    assert has_session(app, client)


def test_every_endpoint_caps_token_size(
    app: Flask, client: FlaskClient, signed_in: dict[str, Any]
) -> None:
    """"cap token size": a token just over the cap is refused as a client error at
    the token, introspection, revocation, userinfo and logout endpoints, with no
    redirect and no server error; the real token still works afterwards."""
    rp = signed_in["rp"]
    huge = "eyJ" + "A" * MAX_TOKEN_BYTES + "." + "B" * 100 + "." + "C" * 100
    resp = client.post("/token", data={"grant_type": "authorization_code", "code": huge,
                                       "redirect_uri": rp.redirect_uri}, headers=rp.basic())
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"
    resp = oidc.refresh(client, rp, huge)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"
    resp = client.post("/introspect", data={"token": huge}, headers=rp.basic())
    assert resp.status_code == 200 and resp.get_json() == {"active": False}
    resp = client.post("/revoke", data={"token": huge}, headers=rp.basic())
    assert resp.status_code in (200, 400)
    resp = oidc.userinfo(client, huge)
    assert resp.status_code == 401
    resp = client.get("/logout", query_string={"id_token_hint": huge,
                                               "post_logout_redirect_uri": TARGET})
    assert 400 <= resp.status_code < 500 and "Location" not in resp.headers
    assert has_session(app, client)
    info = client.post("/introspect", data={"token": signed_in["access_token"]},
                       headers=rp.basic()).get_json()  # fmt: skip
    assert info["active"] is True


def test_every_login_and_consent_page_forbids_framing(app: Flask, client: FlaskClient) -> None:
    """"Content-Security-Policy: frame-ancestors 'none' on login and consent pages":
    each page of a real sign-in (e-mail, code, consent) carries it."""
    oidc.make_account(app)
    rp = oidc.register(app)
    resp = client.get("/authorize", query_string=oidc.auth_params(rp))
    login = urlsplit(resp.headers["Location"]).path
    pages = [client.get(login)]
    submit_email(client, login, "ann@corp.example")
    pages.append(client.get(login + "/code"))
    done = submit_code(client, login, code_from_outbox(app, "ann@corp.example"))
    assert done.status_code == 303
    consent_path = urlsplit(done.headers["Location"]).path
    assert consent_path.endswith("/consent"), consent_path
    pages.append(client.get(consent_path))
    for page in pages:
        assert page.status_code == 200 and page.mimetype == "text/html"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "Share your details" in pages[-1].get_data(as_text=True)
