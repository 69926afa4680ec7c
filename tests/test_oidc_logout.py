"""RP-initiated logout: a forged id_token_hint or an unregistered
post_logout_redirect_uri never redirects; a valid hint ends the session and returns
to the registered URI with ``state``."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.support import oidc

LOGOUT_TARGET = "https://rp.example/bye"


@pytest.fixture
def signed_in(app: Flask, client: FlaskClient) -> dict[str, Any]:
    return oidc.signed_in_with_session(app, client, LOGOUT_TARGET)


has_session = oidc.has_session


def test_valid_hint_logs_out_and_redirects_with_state(
    app: Flask, client: FlaskClient, signed_in: dict[str, Any]
) -> None:
    assert has_session(app, client)
    resp = client.get("/logout", query_string={
        "id_token_hint": signed_in["id_token"], "post_logout_redirect_uri": LOGOUT_TARGET,
        "state": "s-1"})  # fmt: skip
    assert resp.status_code == 303
    assert resp.headers["Location"] == LOGOUT_TARGET + "?state=s-1"
    assert not has_session(app, client)


def test_post_logout_answers_303(app: Flask, client: FlaskClient,
                                 signed_in: dict[str, Any]) -> None:  # fmt: skip
    resp = client.post("/logout", data={"id_token_hint": signed_in["id_token"],
                                        "post_logout_redirect_uri": LOGOUT_TARGET})  # fmt: skip
    assert resp.status_code == 303 and resp.headers["Location"] == LOGOUT_TARGET


def test_forged_hint_never_redirects(app: Flask, client: FlaskClient,
                                     signed_in: dict[str, Any]) -> None:  # fmt: skip
    real = oidc.verify_jwt(client, signed_in["id_token"])
    attacker = ECKey.generate_key("P-256", private=True, auto_kid=True)
    forged_sig = jwt.encode({"alg": "ES256", "kid": real.header["kid"]}, real.claims, attacker)
    forged_none = oidc.raw_jws({"alg": "none"}, real.claims)
    for forged in (forged_sig, forged_none, "garbage", signed_in["id_token"][:-4] + "AAAA"):
        resp = client.get("/logout", query_string={
            "id_token_hint": forged, "post_logout_redirect_uri": LOGOUT_TARGET})  # fmt: skip
        assert resp.status_code == 400 and "Location" not in resp.headers
    assert has_session(app, client)


def test_unregistered_post_logout_uri_never_redirects(
    app: Flask, client: FlaskClient, signed_in: dict[str, Any]
) -> None:
    resp = client.get("/logout", query_string={
        "id_token_hint": signed_in["id_token"],
        "post_logout_redirect_uri": "https://evil.example/"})  # fmt: skip
    assert resp.status_code == 200 and "Location" not in resp.headers
    assert resp.mimetype == "text/html"
    assert not has_session(app, client)


def test_other_clients_uri_never_redirects(app: Flask, client: FlaskClient,
                                           signed_in: dict[str, Any]) -> None:  # fmt: skip
    other = oidc.register(app, name="Other", post_logout_redirect_uris=["https://other.example/"])
    resp = client.get("/logout", query_string={
        "id_token_hint": signed_in["id_token"],
        "post_logout_redirect_uri": "https://other.example/"})  # fmt: skip
    assert "Location" not in resp.headers
    resp = client.get("/logout", query_string={
        "id_token_hint": signed_in["id_token"], "client_id": other.client_id,
        "post_logout_redirect_uri": "https://other.example/"})  # fmt: skip
    assert resp.status_code == 400 and "Location" not in resp.headers


def test_without_hint_asks_for_confirmation(app: Flask, client: FlaskClient,
                                            signed_in: dict[str, Any]) -> None:  # fmt: skip
    rp = signed_in["rp"]
    params = {"client_id": rp.client_id, "post_logout_redirect_uri": LOGOUT_TARGET, "state": "z"}
    page = client.get("/logout", query_string=params)
    assert page.status_code == 200 and "Location" not in page.headers
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert has_session(app, client)
    # A cross-site POST without our CSRF token only shows the page again.
    assert client.post("/logout", data={**params, "confirm": "yes"}).status_code == 200
    assert has_session(app, client)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert token is not None
    done = client.post("/logout", data={**params, "confirm": "yes", "csrf_token": token.group(1)})
    assert done.status_code == 303 and done.headers["Location"] == LOGOUT_TARGET + "?state=z"
    assert not has_session(app, client)


def test_logout_without_anything_shows_page(client: FlaskClient) -> None:
    resp = client.get("/logout")
    assert resp.status_code == 200 and "Location" not in resp.headers
