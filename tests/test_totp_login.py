"""TOTP second factor through the real login pages at a merchant (/authorize):
a unit requiring TOTP forces set-up at the first sign-in and the code at the next,
wrong and replayed codes are refused, five wrong codes end the sign-in, the ID token
says ``mfa``, every POST needs CSRF and answers 303."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.test import TestResponse

from idp.cli import main
from idp.mail.outbox import courier
from idp.store.db import db
from idp.store.models import Session
from tests.support.login import code_from_outbox, csrf_token, post_form
from tests.support.oidc import (
    RP,
    auth_params,
    exchange,
    grant_consent,
    is_login_redirect,
    make_account,
    make_unit,
    pkce,
    query,
    register,
    start_session,
    verify_jwt,
)

EMAIL = "ann@corp.example"
SECRET_RE = re.compile(r'id="totp-secret">([A-Z2-7 ]+)<')


@pytest.fixture
def setup(app: Flask, runner: FlaskCliRunner) -> Iterator[tuple[RP, str]]:
    rp = register(app)
    account_id = make_account(app, EMAIL)
    make_unit(app, account_id, "Corp GmbH")
    result = runner.invoke(main, ["units", "policy", "corp-gmbh", "--require-totp"])
    assert result.exit_code == 0, result.output
    yield rp, account_id
    courier(app).drain()


def path(resp: TestResponse) -> str:
    assert resp.status_code == 303, (resp.status_code, resp.get_data(as_text=True)[:300])
    return urlsplit(resp.headers["Location"]).path


def first_factor(app: Flask, client: FlaskClient, rp: RP) -> tuple[str, str | None]:
    """/authorize, e-mail, e-mail code; returns (login path, PKCE verifier) with the
    browser on its way to the TOTP page."""
    verifier, challenge = pkce()
    params = auth_params(rp, code_challenge=challenge, code_challenge_method="S256",
                         prompt="login")
    login = path(client.get("/authorize", query_string=params))
    resp = post_form(client, login, login + "/email", {"email": EMAIL})
    assert path(resp) == login + "/code"
    resp = post_form(client, login + "/code", login + "/code",
                     {"code": code_from_outbox(app, EMAIL)})
    assert path(resp) == login + "/totp"
    return login, verifier


def wrong_code(secret: str) -> str:
    """A 6-digit code that is valid in no step near now."""
    totp = pyotp.TOTP(secret)
    step = totp.timecode(datetime.now(UTC))
    near = {totp.generate_otp(step + offset) for offset in range(-3, 4)}
    return next(c for c in (f"{n:06d}" for n in range(123456, 999999, 7919)) if c not in near)


def finish_at_merchant(client: FlaskClient, login: str, resp: TestResponse) -> dict[str, str]:
    """Consent if asked, then follow to the merchant's redirect; returns its query."""
    target = path(resp)
    if target == login + "/consent":
        resp = post_form(client, target, target, {"decision": "allow"})
        target = path(resp)
    while not resp.headers["Location"].startswith("https://rp.example/"):
        resp = client.get(resp.headers["Location"])
        assert resp.status_code in (302, 303), resp.get_data(as_text=True)[:300]
    return query(resp)


def enrol(app: Flask, client: FlaskClient, rp: RP) -> tuple[str, dict[str, str], str | None]:
    login, verifier = first_factor(app, client, rp)
    assert client.get_cookie("ug_session") is None  # no session before the second factor
    assert path(client.get(login + "/totp")) == login + "/totp/setup"
    html = client.get(login + "/totp/setup").get_data(as_text=True)
    assert "otpauth://totp/Unitgate:ann%40corp.example?secret=" in html
    secret = SECRET_RE.search(html).group(1).replace(" ", "")  # type: ignore[union-attr]
    resp = post_form(client, login + "/totp/setup", login + "/totp/setup",
                     {"code": wrong_code(secret)})
    assert path(resp) == login + "/totp/setup"
    assert "That code is not right" in client.get(login + "/totp/setup").get_data(as_text=True)
    resp = post_form(client, login + "/totp/setup", login + "/totp/setup",
                     {"code": pyotp.TOTP(secret).now()})
    return secret, finish_at_merchant(client, login, resp), verifier


def test_required_totp_enrols_then_verifies_and_id_token_says_mfa(
    app: Flask, client: FlaskClient, setup: tuple[RP, str]
) -> None:
    rp, account_id = setup
    secret, redirect, verifier = enrol(app, client, rp)
    assert "code" in redirect
    token = exchange(client, rp, _sign_in(redirect, verifier)).get_json()
    claims = verify_jwt(client, token["id_token"]).claims
    assert claims["amr"] == ["otp", "mfa"]
    assert claims["acr"] == "urn:unitgate:acr:mfa"
    with app.app_context():
        row = db.session.query(Session).filter_by(account_id=account_id).one()
        assert row.amr == ["otp", "mfa"] and row.acr == "urn:unitgate:acr:mfa"

    # The next sign-in (another browser) asks for the code, not the set-up.
    other = app.test_client()
    login, verifier = first_factor(app, other, rp)
    html = other.get(login + "/totp").get_data(as_text=True)
    assert "Two-step verification" in html and "totp-secret" not in html
    assert path(other.get(login + "/totp/setup")) == login + "/totp"
    resp = post_form(other, login + "/totp", login + "/totp", {"code": wrong_code(secret)})
    assert path(resp) == login + "/totp"
    assert "1 more" not in other.get(login + "/totp").get_data(as_text=True)
    code = _fresh_code(app, account_id, secret)
    redirect = finish_at_merchant(
        other, login, post_form(other, login + "/totp", login + "/totp", {"code": code})
    )
    token = exchange(other, rp, _sign_in(redirect, verifier)).get_json()
    assert "mfa" in verify_jwt(other, token["id_token"]).claims["amr"]

    # The same code once more (same time step) is refused: replay.
    third = app.test_client()
    login, _ = first_factor(app, third, rp)
    resp = post_form(third, login + "/totp", login + "/totp", {"code": code})
    assert path(resp) == login + "/totp"
    assert third.get_cookie("ug_session") is None


def test_five_wrong_codes_end_the_sign_in(
    app: Flask, client: FlaskClient, setup: tuple[RP, str]
) -> None:
    rp, _account_id = setup
    login, _ = first_factor(app, client, rp)
    html = client.get(login + "/totp/setup").get_data(as_text=True)
    secret = SECRET_RE.search(html).group(1).replace(" ", "")  # type: ignore[union-attr]
    for _ in range(5):
        resp = post_form(client, login + "/totp/setup", login + "/totp/setup",
                         {"code": wrong_code(secret)})
        assert resp.status_code == 303
    page = client.get(login + "/totp")
    assert page.status_code == 403 and "Too many wrong codes" in page.get_data(as_text=True)
    token = csrf_token(client.get(login).get_data(as_text=True))
    resp = client.post(login + "/totp/setup",
                       data={"csrf_token": token, "code": pyotp.TOTP(secret).now()})
    assert resp.status_code == 303
    assert client.get(resp.headers["Location"]).status_code == 403
    assert client.get_cookie("ug_session") is None


def test_every_totp_post_needs_csrf_and_answers_303(
    app: Flask, client: FlaskClient, setup: tuple[RP, str]
) -> None:
    rp, _ = setup
    login, _ = first_factor(app, client, rp)
    for action in (login + "/totp", login + "/totp/setup"):
        assert client.post(action, data={"code": "123456"}).status_code == 400
        resp = post_form(client, login + "/totp/setup", action, {"code": "12"})
        assert resp.status_code == 303


def test_german_totp_pages(app: Flask, client: FlaskClient, setup: tuple[RP, str]) -> None:
    rp, _ = setup
    login, _ = first_factor(app, client, rp)
    html = client.get(login + "/totp/setup?lang=de").get_data(as_text=True)
    assert "Zwei-Schritt-Verifizierung einrichten" in html
    assert "Set up two-step verification" not in html


def _fresh_code(app: Flask, account_id: str, secret: str) -> str:
    """A valid code whose time step was not used yet (the enrolment used the current
    one when it ran in the same 30 s)."""
    from idp.store import totp_repo

    with app.app_context():
        row = totp_repo.for_account(account_id)
        assert row is not None
        last = row.last_used_step
    totp = pyotp.TOTP(secret)
    now_step = totp.timecode(datetime.now(UTC))
    step = max(now_step, last + 1)
    assert step <= now_step + 1, "no unused step inside the window"
    return totp.generate_otp(step)


def _sign_in(redirect: dict[str, str], verifier: str | None) -> object:
    from tests.support.oidc import SignIn

    return SignIn(redirect["code"], redirect.get("state", ""), "", verifier)


def test_session_without_second_factor_no_longer_counts_at_authorize(
    app: Flask, client: FlaskClient, setup: tuple[RP, str]
) -> None:
    rp, account_id = setup
    start_session(app, client, account_id)  # amr ["otp"]: from before the policy
    grant_consent(app, account_id, rp.client_id, ["openid", "profile", "email"])
    params = auth_params(rp, prompt="none")
    resp = client.get("/authorize", query_string=params)
    assert query(resp).get("error") == "login_required"
    resp = client.get("/authorize", query_string=auth_params(rp))
    assert is_login_redirect(app, resp)
