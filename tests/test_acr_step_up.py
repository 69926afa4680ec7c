"""Step-up with ``acr_values`` (OIDC Core §3.1.2.1) through the real login pages and
real SMTP: the mfa value forces a TOTP code on a fresh sign-in and on a live
e-mail-only session (set-up first when the account has none), ``prompt=none`` is
refused, the ID token's ``acr``/``amr`` say what was achieved, the e-mail value alone
or unknown values force nothing, and skipping the TOTP page never yields a code."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from idp.factors.acr import ACR_EMAIL, ACR_MFA
from idp.mail.outbox import courier
from tests.support.login import post_form
from tests.support.oidc import (
    RP,
    SignIn,
    auth_params,
    exchange,
    make_account,
    make_unit,
    pkce,
    query,
    register,
    verify_jwt,
)
from tests.support.step_up import EMAIL, allow_and_follow, email_factor, enrol, path

MERCHANT = "https://rp.example/"


@pytest.fixture
def rp(app: Flask) -> Iterator[RP]:
    account_id = make_account(app, EMAIL)
    make_unit(app, account_id, "Corp GmbH")  # require_totp is off
    yield register(app)
    courier(app).drain()


def authorize(client: FlaskClient, rp: RP, **extra: str) -> tuple[TestResponse, str]:
    """GET /authorize with PKCE; returns the response and the verifier."""
    verifier, challenge = pkce()
    params = auth_params(rp, code_challenge=challenge, code_challenge_method="S256", **extra)
    return client.get("/authorize", query_string=params), verifier


def to_merchant(client: FlaskClient, login: str, resp: TestResponse) -> dict[str, str]:
    """Consent if asked, then follow the redirects to the merchant; its query."""
    resp = allow_and_follow(client, login, resp)
    assert resp.headers["Location"].startswith(MERCHANT), resp.headers["Location"]
    return query(resp)


def id_token(client: FlaskClient, rp: RP, redirect: dict[str, str], verifier: str) -> dict:
    assert "code" in redirect, redirect
    body = exchange(client, rp, SignIn(redirect["code"], redirect["state"], "", verifier))
    assert body.status_code == 200, body.get_json()
    return dict(verify_jwt(client, body.get_json()["id_token"]).claims)


def email_sign_in(app: Flask, client: FlaskClient, rp: RP, **extra: str) -> dict:
    """A whole sign-in without a second factor; the ID token's claims."""
    resp, verifier = authorize(client, rp, **extra)
    login = path(resp)
    after = email_factor(app, client, login)
    assert "/totp" not in path(after)
    return id_token(client, rp, to_merchant(client, login, after), verifier)


def test_acr_mfa_forces_totp_set_up_on_a_fresh_sign_in(
    app: Flask, client: FlaskClient, rp: RP
) -> None:
    resp, verifier = authorize(client, rp, acr_values=f"urn:other:gold {ACR_MFA}")
    login = path(resp)
    after = email_factor(app, client, login)
    assert path(after) == login + "/totp"  # no unit requires it: the merchant does
    assert client.get_cookie("ug_session") is None
    assert path(client.get(login + "/totp")) == login + "/totp/setup"  # no TOTP yet
    _secret, resp = enrol(client, login)
    claims = id_token(client, rp, to_merchant(client, login, resp), verifier)
    assert claims["acr"] == ACR_MFA
    assert claims["amr"] == ["otp", "mfa"]


def test_acr_mfa_steps_up_a_live_email_session(
    app: Flask, client: FlaskClient, rp: RP
) -> None:
    claims = email_sign_in(app, client, rp)
    assert claims["acr"] == ACR_EMAIL and claims["amr"] == ["otp"]

    # prompt=none cannot step up: login_required, and no code.
    resp, _ = authorize(client, rp, acr_values=ACR_MFA, prompt="none")
    refused = query(resp)
    assert refused.get("error") == "login_required" and "code" not in refused

    # Without prompt=none the account is known: straight to the TOTP step, no e-mail.
    resp, verifier = authorize(client, rp, acr_values=ACR_MFA)
    login = path(resp)
    assert path(client.get(login)) == login + "/totp"
    assert path(client.get(login + "/totp")) == login + "/totp/setup"
    old_session = client.get_cookie("ug_session")
    _secret, resp = enrol(client, login)
    claims = id_token(client, rp, to_merchant(client, login, resp), verifier)
    assert claims["acr"] == ACR_MFA and claims["amr"] == ["otp", "mfa"]
    new_session = client.get_cookie("ug_session")
    assert new_session is not None and old_session is not None
    assert new_session.value != old_session.value  # a new session id for the new login

    # The stepped-up session now satisfies acr mfa, even with prompt=none.
    resp, verifier = authorize(client, rp, acr_values=ACR_MFA, prompt="none")
    claims = id_token(client, rp, query(resp), verifier)
    assert claims["acr"] == ACR_MFA


def test_skipping_the_totp_page_gives_no_code(
    app: Flask, client: FlaskClient, rp: RP
) -> None:
    email_sign_in(app, client, rp)
    resp, _ = authorize(client, rp, acr_values=ACR_MFA, prompt="consent")
    login = path(resp)
    # Post consent directly instead of giving the TOTP code: back to the login.
    resp = post_form(client, login + "/totp/setup", login + "/consent", {"decision": "allow"})
    assert resp.status_code == 303
    assert not resp.headers["Location"].startswith(MERCHANT)
    assert path(client.get(resp.headers["Location"])) == login + "/totp"


@pytest.mark.parametrize(
    "acr_values", [ACR_EMAIL, "urn:other:gold", f"{ACR_EMAIL} urn:other:gold"]
)
def test_acr_email_or_unknown_values_do_not_force_totp(
    app: Flask, client: FlaskClient, rp: RP, acr_values: str
) -> None:
    claims = email_sign_in(app, client, rp, acr_values=acr_values)
    assert claims["acr"] == ACR_EMAIL and claims["amr"] == ["otp"]


def test_discovery_lists_acr_values(client: FlaskClient) -> None:
    body = client.get("/.well-known/openid-configuration").get_json()
    assert body["acr_values_supported"] == [ACR_EMAIL, ACR_MFA]
