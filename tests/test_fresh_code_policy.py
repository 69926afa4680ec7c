"""The unit policy ``fresh_code_every_sign_in`` over HTTP: with a live session from a
first sign-in, a second sign-in at another merchant still asks for a new e-mail code
(whatever the merchant sent; ``prompt=none`` gets ``login_required``), for OIDC and
SAML; members of other units keep single sign-on; the CLI and ``idp apply`` set it;
a company SSO of such a unit asks its upstream for a new sign-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.test import TestResponse

from idp.cli import main
from idp.mail.outbox import courier
from idp.release import consent, merchants
from idp.release.claims import claims_for_scopes
from idp.store.db import db
from idp.store.models import AuditEvent, Unit
from tests.support.login import code_from_outbox, post_form
from tests.support.oidc import (
    RP,
    auth_params,
    exchange,
    make_account,
    make_unit,
    pkce,
    query,
    register,
    verify_jwt,
)

EMAIL = "ann@corp.example"


@pytest.fixture
def shops(app: Flask) -> Iterator[tuple[RP, RP, str]]:
    first, second = register(app, name="Shop A"), register(app, name="Shop B")
    account_id = make_account(app, EMAIL)
    make_unit(app, account_id, "Corp GmbH")
    scopes = ["openid", "profile", "email"]
    with app.app_context():
        for rp in (first, second):
            merchant = merchants.of_client(rp.client_id)
            assert merchant is not None
            consent.grant(account_id, merchant.id, scopes, claims_for_scopes(scopes))
    yield first, second, account_id
    courier(app).drain()


def policy(runner: FlaskCliRunner, *flags: str) -> dict[str, object]:
    result = runner.invoke(main, ["units", "policy", "corp-gmbh", *flags, "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


def location(resp: TestResponse) -> str:
    assert resp.status_code == 303, (resp.status_code, resp.get_data(as_text=True)[:300])
    return str(resp.headers["Location"])


def authorize(client: FlaskClient, rp: RP, **extra: str) -> tuple[TestResponse, str | None]:
    verifier, challenge = pkce()
    params = auth_params(rp, code_challenge=challenge, code_challenge_method="S256", **extra)
    return client.get("/authorize", query_string=params), verifier


def sign_in_with_code(app: Flask, client: FlaskClient, resp: TestResponse) -> TestResponse:
    """From the redirect to the login pages: e-mail, a new code from the outbox."""
    login = urlsplit(location(resp)).path
    resp = post_form(client, login, login + "/email", {"email": EMAIL})
    assert urlsplit(location(resp)).path == login + "/code"
    return post_form(client, login + "/code", login + "/code",
                     {"code": code_from_outbox(app, EMAIL)})


def test_second_merchant_with_a_live_session_still_asks_for_a_code(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, shops: tuple[RP, RP, str]
) -> None:
    first, second, account_id = shops
    assert policy(runner, "--fresh-code-every-sign-in")["fresh_code_every_sign_in"] is True
    resp, verifier = authorize(client, first)
    back = sign_in_with_code(app, client, resp)
    assert "code" in parse_qs(urlsplit(location(back)).query)
    assert client.get_cookie("ug_session") is not None  # a live session
    # Shop B, same browser, session alive: not single sign-on, a new code.
    resp, verifier = authorize(client, second)
    assert urlsplit(location(resp)).path.startswith("/interaction/")
    back = sign_in_with_code(app, client, resp)
    q = parse_qs(urlsplit(location(back)).query)
    tokens = exchange(client, second, _si(q, verifier)).get_json()
    claims = verify_jwt(client, tokens["id_token"]).claims
    assert claims["sub"] == account_id and claims["amr"] == ["otp"]
    # Whatever the merchant sends: prompt=none cannot pass silently.
    resp, _ = authorize(client, first, prompt="none")
    assert query(resp)["error"] == "login_required"
    # And even the same merchant again asks again.
    resp, _ = authorize(client, first)
    assert urlsplit(location(resp)).path.startswith("/interaction/")


def test_without_the_policy_the_session_signs_in_at_once(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, shops: tuple[RP, RP, str]
) -> None:
    first, second, _ = shops
    assert policy(runner)["fresh_code_every_sign_in"] is False
    resp, _ = authorize(client, first)
    sign_in_with_code(app, client, resp)
    resp, _ = authorize(client, second)
    assert "code" in query(resp)


def test_the_policy_is_audited_and_can_be_turned_off(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, shops: tuple[RP, RP, str]
) -> None:
    policy(runner, "--fresh-code-every-sign-in")
    assert policy(runner, "--no-fresh-code-every-sign-in")["fresh_code_every_sign_in"] is False
    with app.app_context():
        events = (db.session.query(AuditEvent).filter_by(action="unit.policy")
                  .order_by(AuditEvent.seq).all())
        assert [e.details for e in events] == [{"fresh_code_every_sign_in": True},
                                            {"fresh_code_every_sign_in": False}]
    result = runner.invoke(main, ["units", "policy", "corp-gmbh"])
    assert "fresh_code_every_sign_in=no" in result.output


def test_idp_apply_sets_and_exports_the_policy(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, shops: tuple[RP, RP, str]
) -> None:
    config = tmp_path / "units.yaml"
    config.write_text("version: 1\nunits:\n  - slug: corp-gmbh\n"
                      "    fresh_code_every_sign_in: true\n")
    result = runner.invoke(main, ["apply", str(config)])
    assert result.exit_code == 0, result.output
    with app.app_context():
        unit = db.session.query(Unit).filter_by(slug="corp-gmbh").one()
        assert unit.fresh_code_every_sign_in is True
    result = runner.invoke(main, ["export"])
    assert result.exit_code == 0, result.output
    assert "fresh_code_every_sign_in: true" in result.output


def _si(q: dict[str, list[str]], verifier: str | None) -> object:
    from tests.support.oidc import SignIn

    return SignIn(q["code"][0], q["state"][0], "", verifier)
