"""Driving the real login pages through the e-mail code (real outbox) and the TOTP
set-up, for the step-up tests (OIDC ``acr_values`` and SAML RequestedAuthnContext)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.login import code_from_outbox, post_form

EMAIL = "ann@corp.example"
SECRET_RE = re.compile(r'id="totp-secret">([A-Z2-7 ]+)<')


def path(resp: TestResponse) -> str:
    """The path of a 303's Location (asserting it is a 303)."""
    assert resp.status_code == 303, (resp.status_code, resp.get_data(as_text=True)[:300])
    return urlsplit(resp.headers["Location"]).path


def email_factor(app: Flask, client: FlaskClient, login: str,
                 email: str = EMAIL) -> TestResponse:  # fmt: skip
    """The e-mail form and the code from the real outbox; the response after the code."""
    resp = post_form(client, login, login + "/email", {"email": email})
    assert path(resp) == login + "/code"
    return post_form(client, login + "/code", login + "/code",
                     {"code": code_from_outbox(app, email)})


def enrol(client: FlaskClient, login: str) -> tuple[str, TestResponse]:
    """The set-up page: read the secret, confirm with a real code."""
    html = client.get(login + "/totp/setup").get_data(as_text=True)
    secret = SECRET_RE.search(html).group(1).replace(" ", "")  # type: ignore[union-attr]
    resp = post_form(client, login + "/totp/setup", login + "/totp/setup",
                     {"code": pyotp.TOTP(secret).now()})
    return secret, resp


def allow_and_follow(client: FlaskClient, login: str, resp: TestResponse) -> TestResponse:
    """Consent if asked, then follow 303s on Unitgate until a non-redirect answer or a
    redirect elsewhere (the merchant)."""
    if path(resp) == login + "/consent":
        resp = post_form(client, login + "/consent", login + "/consent", {"decision": "allow"})
    local = ("/", "http://localhost/")
    while resp.status_code in (302, 303) and resp.headers["Location"].startswith(local):
        resp = client.get(resp.headers["Location"])
    return resp
