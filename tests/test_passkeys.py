"""Passkeys (WebAuthn, :mod:`idp.factors.passkeys`) through HTTP with a software
authenticator (tests/support/authenticator.py): registration on the dashboard, the
options endpoints (RP ID from the issuer, challenges used once and bound to their
interaction), sign-in instead of an e-mail code (``amr`` ``hwk``/``swk`` + ``user``),
the second factor where a unit requires TOTP, a signature counter that goes backwards
(refused, audited), the fresh-code policy, rename and remove (recent sign-in)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from idp.cli import main
from idp.dashboard import views_passkeys
from idp.mail.outbox import courier
from idp.store.db import db
from idp.store.models import AuditEvent, Unit
from tests.support.authenticator import SoftAuthenticator
from tests.support.login import (
    add_protocol_stand_in,
    code_from_outbox,
    csrf_token,
    path_of,
    sign_in_to_dashboard,
    start,
    submit_code,
    submit_email,
)
from tests.support.oidc import make_account, make_unit

ANN = "ann@corp.example"
ORIGIN = "http://localhost"


@pytest.fixture
def ann(app: Flask) -> Iterator[tuple[str, str]]:
    add_protocol_stand_in(app)
    account_id = make_account(app, ANN)
    unit_id = make_unit(app, account_id, "Corp GmbH")
    yield account_id, unit_id
    courier(app).drain()


def register(web: FlaskClient, auth: SoftAuthenticator, name: str = "Laptop") -> str:
    """Add a passkey on the dashboard; the dashboard page after it."""
    token = csrf_token(web.get("/account").get_data(as_text=True))
    resp = web.post("/account/passkeys/options", headers={"X-CSRFToken": token})
    assert resp.status_code == 200, resp.status_code
    options = resp.get_json()
    resp = web.post("/account/passkeys", data={
        "csrf_token": token, "credential": auth.create(options), "name": name})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/account#passkeys")
    return web.get("/account").get_data(as_text=True)


def login_options(web: FlaskClient, login: str) -> dict[str, Any]:
    token = csrf_token(web.get(login).get_data(as_text=True))
    resp = web.post(login + "/passkey/options", headers={"X-CSRFToken": token})
    assert resp.status_code == 200, (resp.status_code, resp.get_data(as_text=True))
    assert resp.headers["Cache-Control"] == "no-store"
    return dict(resp.get_json())


def post_assertion(web: FlaskClient, login: str, credential: str) -> Any:
    token = csrf_token(web.get(login).get_data(as_text=True))
    return web.post(login + "/passkey", data={"csrf_token": token, "credential": credential})


def finish(web: FlaskClient, resp: Any) -> dict[str, Any]:
    """Follow the stand-in merchant's redirects to its resume JSON."""
    for _ in range(6):
        assert resp.status_code in (302, 303), (resp.status_code, resp.get_data(as_text=True))
        location = resp.headers["Location"]
        if "/_test/resume/" in location:
            return dict(web.get(location).get_json())
        if path_of(resp).endswith("/consent"):
            page = path_of(resp)
            token = csrf_token(web.get(page).get_data(as_text=True))
            resp = web.post(page, data={"csrf_token": token, "decision": "allow"})
            continue
        resp = web.get(location)
    raise AssertionError("no resume")


def events(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_register_then_sign_in_with_the_passkey_instead_of_a_code(
    app: Flask, client: FlaskClient, ann: tuple[str, str]
) -> None:
    auth = SoftAuthenticator(ORIGIN)
    sign_in_to_dashboard(app, client, ANN)
    page = register(client, auth, "Work laptop")
    assert 'value="Work laptop"' in page and "Bound to this device" in page
    [registered] = events(app, "passkey.registered")
    assert registered.target == ann[0] and registered.details["backup_eligible"] is False
    # the user handle is random, not the account id or the address
    assert auth.credentials[0].user_handle not in (ann[0].encode(), ANN.encode())
    assert len(auth.credentials[0].user_handle) == 32

    assert client.post("/account/sign-out", data={
        "csrf_token": csrf_token(page)}).status_code == 303
    login = start(client)
    html = client.get(login).get_data(as_text=True)
    assert 'autocomplete="username webauthn"' in html and 'data-passkey="get"' in html
    assert "passkeys.js" in html
    options = login_options(client, login)
    assert options["rpId"] == "localhost" and options["allowCredentials"] == []
    state = finish(client, post_assertion(client, login, auth.get(options)))
    assert state["finished"] is True and state["account_id"] == ann[0]
    assert state["amr"] == ["hwk", "user", "mfa"]
    assert state["acr"] == "urn:unitgate:acr:mfa"
    [signed_in] = events(app, "account.signed_in")
    assert signed_in.details["method"] == "passkey"
    assert "never" not in client.get("/account").get_data(as_text=True).split(
        'id="passkey-list"')[1].split("</table>")[0]


def test_synced_passkey_without_user_verification_says_swk_only(
    app: Flask, client: FlaskClient, ann: tuple[str, str]
) -> None:
    auth = SoftAuthenticator(ORIGIN, uv=False, backup_eligible=True, backed_up=True)
    sign_in_to_dashboard(app, client, ANN)
    assert "Synced passkey (backed up)" in register(client, auth)
    other = app.test_client()
    login = start(other)
    state = finish(other, post_assertion(other, login, auth.get(login_options(other, login))))
    assert state["amr"] == ["swk"] and state["acr"] == "urn:unitgate:acr:email"


def test_challenge_is_single_use_bound_to_its_interaction_and_origin_checked(
    app: Flask, client: FlaskClient, ann: tuple[str, str]
) -> None:
    auth = SoftAuthenticator(ORIGIN)
    sign_in_to_dashboard(app, client, ANN)
    register(client, auth)
    other = app.test_client()
    login = start(other)
    options = login_options(other, login)
    # another interaction of the same browser cannot use this challenge
    second = start(other)
    assert login_options(other, second)["challenge"] != options["challenge"]
    resp = post_assertion(other, login, auth.get(options, origin="http://evil.localhost"))
    assert path_of(resp) == login  # wrong origin: refused, back to the e-mail page
    assert "could not be checked" in other.get(login).get_data(as_text=True)
    # the challenge was taken by that attempt: a correct answer to it no longer counts
    resp = post_assertion(other, login, auth.get(options))
    assert path_of(resp) == login
    assert "has expired" in other.get(login).get_data(as_text=True)
    # a wrong RP ID fails too
    options = login_options(other, login)
    resp = post_assertion(other, login, auth.get(options, rp_id="evil.example"))
    assert path_of(resp) == login
    # options need the CSRF token
    assert other.post(login + "/passkey/options").status_code == 400
    options = login_options(other, login)
    state = finish(other, post_assertion(other, login, auth.get(options)))
    assert state["account_id"] == ann[0]


def test_counter_going_backwards_is_refused_and_audited(
    app: Flask, client: FlaskClient, ann: tuple[str, str]
) -> None:
    auth = SoftAuthenticator(ORIGIN)
    sign_in_to_dashboard(app, client, ANN)
    register(client, auth)
    other = app.test_client()
    login = start(other)
    finish(other, post_assertion(other, login, auth.get(login_options(other, login),
                                                        sign_count=7)))
    third = app.test_client()
    login = start(third)
    resp = post_assertion(third, login, auth.get(login_options(third, login), sign_count=7))
    assert path_of(resp) == login
    assert "may have been copied" in third.get(login).get_data(as_text=True)
    [event] = events(app, "passkey.counter_regressed")
    assert event.details["stored"] == 7 and event.details["received"] == 7
    resp = post_assertion(third, login, auth.get(login_options(third, login), sign_count=3))
    assert path_of(resp) == login and len(events(app, "passkey.counter_regressed")) == 2
    state = finish(third, post_assertion(third, login,
                                         auth.get(login_options(third, login), sign_count=8)))
    assert state["account_id"] == ann[0]


def test_passkey_is_the_second_factor_where_a_unit_requires_totp(
    app: Flask, client: FlaskClient, ann: tuple[str, str]
) -> None:
    auth = SoftAuthenticator(ORIGIN)
    sign_in_to_dashboard(app, client, ANN)
    register(client, auth)
    with app.app_context():
        db.session.get(Unit, ann[1]).require_totp = True  # type: ignore[union-attr]
        db.session.commit()
    other = app.test_client()
    login = start(other)
    submit_email(other, login, ANN)
    resp = submit_code(other, login, code_from_outbox(app, ANN))
    assert path_of(resp) == login + "/totp"
    page = other.get(login + "/totp/setup").get_data(as_text=True)
    assert "Use a passkey instead" in page
    token = csrf_token(page)
    options = other.post(login + "/passkey/options", headers={"X-CSRFToken": token}).get_json()
    assert options["userVerification"] == "required"
    assert [c["id"] for c in options["allowCredentials"]] == [
        json.loads(auth.get(options))["id"]]
    auth.uv = False  # without user verification it is no second factor
    resp = other.post(login + "/passkey", data={"csrf_token": token,
                                                "credential": auth.get(options)})
    assert path_of(resp) == login + "/totp"
    auth.uv = True
    options = other.post(login + "/passkey/options", headers={"X-CSRFToken": token}).get_json()
    resp = other.post(login + "/passkey", data={"csrf_token": token,
                                                "credential": auth.get(options)})
    state = finish(other, resp)
    assert state["account_id"] == ann[0]
    assert state["amr"] == ["otp", "hwk", "user", "mfa"]
    assert state["acr"] == "urn:unitgate:acr:mfa"
    assert events(app, "passkey.used")


def test_fresh_code_policy_decides_whether_a_passkey_counts(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, ann: tuple[str, str]
) -> None:
    auth = SoftAuthenticator(ORIGIN)
    sign_in_to_dashboard(app, client, ANN)
    register(client, auth)
    result = runner.invoke(main, ["units", "policy", "corp-gmbh",
                                  "--fresh-code-every-sign-in", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["passkey_counts_as_fresh"] is False
    other = app.test_client()
    login = start(other)
    resp = post_assertion(other, login, auth.get(login_options(other, login)))
    assert path_of(resp) == login
    assert "new e-mail code at every sign-in" in other.get(login).get_data(as_text=True)
    result = runner.invoke(main, ["units", "policy", "corp-gmbh",
                                  "--passkey-counts-as-fresh", "--json"])
    assert json.loads(result.output)["passkey_counts_as_fresh"] is True
    assert any(e.details.get("passkey_counts_as_fresh") for e in events(app, "unit.policy"))
    state = finish(other, post_assertion(other, login, auth.get(login_options(other, login))))
    assert state["account_id"] == ann[0]


def test_rename_and_remove_need_csrf_and_removal_a_recent_sign_in(
    app: Flask, client: FlaskClient, ann: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = SoftAuthenticator(ORIGIN)
    sign_in_to_dashboard(app, client, ANN)
    page = register(client, auth)
    passkey_id = page.split('data-passkey-id="')[1].split('"')[0]
    token = csrf_token(page)
    assert client.post(f"/account/passkeys/{passkey_id}/rename",
                       data={"name": "x"}).status_code == 400  # no CSRF token
    client.post(f"/account/passkeys/{passkey_id}/rename",
                data={"csrf_token": token, "name": "  Phone\u0000 "})
    assert 'value="Phone"' in client.get("/account").get_data(as_text=True)
    assert client.post(f"/account/passkeys/{passkey_id}/remove").status_code == 400
    monkeypatch.setattr(views_passkeys, "RECENT_SECONDS", -1)
    client.post(f"/account/passkeys/{passkey_id}/remove", data={"csrf_token": token})
    page = client.get("/account").get_data(as_text=True)
    assert "sign in again before removing" in page and 'value="Phone"' in page
    assert "Please correct the marked fields." not in page  # the profile has no error
    monkeypatch.setattr(views_passkeys, "RECENT_SECONDS", 600)
    # another account's session cannot remove it
    make_account(app, "bob@corp.example")
    bob = app.test_client()
    sign_in_to_dashboard(app, bob, "bob@corp.example")
    bob_token = csrf_token(bob.get("/account").get_data(as_text=True))
    bob.post(f"/account/passkeys/{passkey_id}/remove", data={"csrf_token": bob_token})
    assert not events(app, "passkey.removed")
    client.post(f"/account/passkeys/{passkey_id}/remove", data={"csrf_token": token})
    page = client.get("/account").get_data(as_text=True)
    assert 'id="passkey-none"' in page
    [removed] = events(app, "passkey.removed")
    assert removed.details["passkey_id"] == passkey_id
    other = app.test_client()
    login = start(other)
    resp = post_assertion(other, login, auth.get(login_options(other, login)))
    assert path_of(resp) == login
    assert "not known here" in other.get(login).get_data(as_text=True)


def test_someone_acting_as_the_employee_cannot_add_or_remove_passkeys(app: Flask) -> None:
    from tests.test_impersonation import browser, start, world

    ids = world(app)
    web, csrf = browser(app, ids["carl"])
    resp = start(web, csrf, ids["sales"], ids["ann_access"], minutes=10)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    page = web.get("/account").get_data(as_text=True)
    assert "ann@acme.example" in page and 'id="passkey-acting"' in page
    assert 'id="passkey-register"' not in page
    token = csrf_token(page)
    # the dashboard's guard refuses every acting POST (idp.dashboard.impersonation);
    # the passkey views refuse an acting session themselves as well
    resp = web.post("/account/passkeys/options", headers={"X-CSRFToken": token})
    assert resp.status_code == 403
    auth = SoftAuthenticator(ORIGIN)
    fake = {"rp": {"id": "localhost"}, "user": {"id": "AAAA"}, "challenge": "AAAA"}
    assert web.post("/account/passkeys", data={
        "csrf_token": token, "credential": auth.create(fake), "name": "backdoor"},
    ).status_code == 403
    assert not events(app, "passkey.registered")
