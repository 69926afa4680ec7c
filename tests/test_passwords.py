"""The optional password credential (issue 13, item 1) through HTTP, the CLI and the
services, on both backends: the unit policy, the initial password in the invitation,
the password page (amr ``pwd``), the status in the API, the change on the dashboard
with the current password or an e-mail code, the staff reset, the list of common
passwords, throttling and the lock-out (codes keep working), the rehash when the
argon2 parameters change, and the password never in an answer, audit record or log."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.accounts import invites, lifecycle
from idp.cli import main
from idp.factors import password_policy
from idp.mail.outbox import courier, open_body
from idp.services import services
from idp.store import outbox_repo
from idp.store.db import db
from idp.store.models import AuditEvent, PasswordCredential, Session
from idp.units import registry as units
from tests.support.api import Api, api_for, assert_problem
from tests.support.login import (
    add_protocol_stand_in,
    code_from_outbox,
    path_of,
    post_form,
    start,
    submit_code,
    submit_email,
)

EMAIL = "nina@acme.example"
PASSWORD_RE = re.compile(r"\n\n([A-Za-z0-9#+]{12})\n\n")
LINK_RE = re.compile(r"http://localhost/invitation/([A-Za-z0-9_\-]+)")
FAILED = "or this account cannot sign in with a password"
CHOSEN = "Velvet-Harbour-Lantern-42"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # cheap hashes for the tests; a small lock-out threshold
    return {"argon2_time_cost": 1, "argon2_memory_kib": 8192, "lockout_failures": 4}


@pytest.fixture
def web(app: Flask) -> FlaskClient:
    add_protocol_stand_in(app)
    return app.test_client()


def _mails(app: Flask, email: str) -> list[str]:
    """The text bodies of the e-mails to ``email``, newest first."""
    courier(app).drain()
    with app.app_context():
        out = []
        for message in outbox_repo.recent(200):
            if message.kind == "email" and message.payload.get("to") == email:
                body = open_body(message)
                assert body is not None
                out.append(body["text"])
        return out


def _password_in(text: str) -> str | None:
    found = PASSWORD_RE.search(text)
    return found.group(1) if found else None


def _unit(app: Flask, passwords: bool) -> str:
    with app.app_context():
        unit_id = units.create("ACME", slug="acme").id
    if passwords:
        result = app.test_cli_runner().invoke(
            main, ["units", "policy", "acme", "--passwords-allowed", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["passwords_allowed"] is True
    return unit_id


def _invite(api: Api, unit_id: str) -> dict[str, Any]:
    resp = api.post(f"/units/{unit_id}/contacts", json={
        "email": EMAIL, "given_name": "Nina", "family_name": "Neu",
        "roles": ["employee"], "platform_access": True,
    })
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return dict(resp.get_json())


def _accept(app: Flask) -> None:
    token = LINK_RE.search(_mails(app, EMAIL)[-1])
    assert token
    with app.app_context():
        assert invites.accept(token.group(1), None).status == "ok"


def _sign_in(web: FlaskClient, password: str, email: str = EMAIL,
             ip: str = "127.0.0.1") -> Any:
    env = {"environ_base": {"REMOTE_ADDR": ip}}
    resp = web.get("/_test/start", query_string={"prompt": "login"}, **env)
    login = path_of(resp)
    page = web.get(login + "/sign-in-password", **env)
    assert page.status_code == 200
    return post_form(web, login + "/sign-in-password", login + "/sign-in-password",
                     {"email": email, "password": password}, **env)


def _signed_in(resp: Any) -> bool:
    return resp.status_code == 303 and not path_of(resp).endswith("/sign-in-password")


def _error_of(web: FlaskClient, resp: Any) -> str:
    assert resp.status_code == 303 and path_of(resp).endswith("/sign-in-password")
    return str(web.get(resp.headers["Location"]).get_data(as_text=True))


def _status(api: Api, unit_id: str) -> str | None:
    items = api.get(f"/units/{unit_id}/accesses").get_json()["items"]
    assert len(items) == 1
    return items[0]["password_status"]  # type: ignore[no-any-return]


def _stored_hash(app: Flask) -> str:
    with app.app_context():
        row = db.session.scalars(select(PasswordCredential)).one()
        return row.hash


def _dashboard_post(web: FlaskClient, action: str, data: dict[str, str]) -> str:
    resp = post_form(web, "/account", action, data)
    assert resp.status_code == 303
    return str(web.get("/account").get_data(as_text=True))


def test_lifecycle_invite_sign_in_change_reset(
    app: Flask, client: FlaskClient, web: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    acme = _unit(app, passwords=True)
    api = api_for(app, client, "acme")
    made = _invite(api, acme)
    assert made["password_status"] == "initial"
    initial = _password_in(_mails(app, EMAIL)[0])
    assert initial is not None and len(initial) == 12
    assert not set(initial) & set("0O1lI")
    assert set(initial) <= set(password_policy.ALPHABET)

    # invited, not yet active: the password does not sign in yet
    assert FAILED in _error_of(web, _sign_in(web, initial))
    _accept(app)
    assert _status(api, acme) == "initial"

    resp = _sign_in(web, initial)
    assert _signed_in(resp)
    with app.app_context():
        assert [s.amr for s in db.session.scalars(select(Session))] == [["pwd"]]
    page = web.get("/account").get_data(as_text=True)
    assert "Please choose your own password now" in page
    assert 'autocomplete="current-password"' in page

    # the dashboard: a common password is refused, the current one is required
    html = _dashboard_post(web, "/account/password", {
        "current_password": initial, "new_password": "password1234",
        "repeat_password": "password1234"})
    assert "too common" in html and _status(api, acme) == "initial"
    html = _dashboard_post(web, "/account/password", {
        "current_password": "not-it-at-all", "new_password": CHOSEN,
        "repeat_password": CHOSEN})
    assert "current password is not right" in html and _status(api, acme) == "initial"
    html = _dashboard_post(web, "/account/password", {
        "current_password": initial, "new_password": CHOSEN, "repeat_password": CHOSEN})
    assert "Your password was changed" in html
    assert _status(api, acme) == "set_by_user"
    other = app.test_client()
    assert not _signed_in(_sign_in(other, initial))
    assert _signed_in(_sign_in(app.test_client(), CHOSEN))

    # with a fresh e-mail code instead of the current password
    html = _dashboard_post(web, "/account/password/code", {})
    assert "We sent a code" in html and 'name="code"' in html
    code = code_from_outbox(app, EMAIL)
    html = _dashboard_post(web, "/account/password/with-code", {
        "code": code, "code_new_password": "Quiet-Meadow-Orchard-7",
        "code_repeat_password": "Quiet-Meadow-Orchard-7"})
    assert "Your password was changed" in html
    assert _status(api, acme) == "set_by_user"
    assert _signed_in(_sign_in(app.test_client(), "Quiet-Meadow-Orchard-7"))
    # the code was used up
    html = _dashboard_post(web, "/account/password/with-code", {
        "code": code, "code_new_password": CHOSEN, "code_repeat_password": CHOSEN})
    assert "Your password was changed" not in html

    # reset by staff: a new password by mail, the old one stops working
    access_id = made["access_id"]
    reset = api.post(f"/units/{acme}/accesses/{access_id}/reset-password")
    assert reset.status_code == 200, reset.get_data(as_text=True)
    assert reset.get_json()["password_status"] == "reset_by_staff"
    mail = _mails(app, EMAIL)[0]
    assert "has reset your Unitgate password" in mail
    fresh = _password_in(mail)
    assert fresh is not None and fresh != initial
    assert not _signed_in(_sign_in(app.test_client(), "Quiet-Meadow-Orchard-7"))
    assert _signed_in(_sign_in(app.test_client(), fresh))

    # the CLI resets too, and never prints the password
    result = app.test_cli_runner().invoke(
        main, ["accesses", "reset-password", "acme", access_id, "--json"])
    assert result.exit_code == 0, result.output
    # (stdout: without IDP_SMTP_URL the development transport prints mails on stderr)
    assert json.loads(result.stdout)["password_status"] == "reset_by_staff"
    latest = _password_in(_mails(app, EMAIL)[0])
    assert latest is not None and latest not in result.stdout
    assert fresh not in reset.get_data(as_text=True)

    # never in an answer, an audit record or a log line
    listing = api.get(f"/units/{acme}/accesses").get_data(as_text=True)
    with app.app_context():
        audit_text = json.dumps([
            [e.action, e.target, e.details] for e in db.session.scalars(select(AuditEvent))
        ])
    assert "password.generated" in audit_text and "password.changed" in audit_text
    for secret in (initial, CHOSEN, "Quiet-Meadow-Orchard-7", fresh, latest):
        assert secret not in listing and secret not in audit_text
        assert secret not in caplog.text
        assert secret not in json.dumps(made)


def test_a_unit_without_the_policy_sends_no_password_and_refuses_password_login(
    app: Flask, client: FlaskClient, web: FlaskClient
) -> None:
    acme = _unit(app, passwords=False)
    api = api_for(app, client, "acme")
    made = _invite(api, acme)
    assert made["password_status"] is None
    assert _password_in(_mails(app, EMAIL)[0]) is None
    _accept(app)
    assert _status(api, acme) is None
    assert "Sign in with a password" not in web.get(start(web)).get_data(as_text=True)
    assert_problem(api.post(f"/units/{acme}/accesses/{made['access_id']}/reset-password"),
                   422, "passwords_not_allowed")
    unknown = _error_of(web, _sign_in(web, "Whatever-It-Is-99", email="nobody@acme.example"))
    known = _error_of(web, _sign_in(web, "Whatever-It-Is-99"))
    assert FAILED in unknown and FAILED in known

    # switched on later: the access details bring a password; switched off: it stops
    runner = app.test_cli_runner()
    assert runner.invoke(main, ["units", "policy", "acme", "--passwords-allowed"]).exit_code == 0
    assert "Sign in with a password" in web.get(start(web)).get_data(as_text=True)
    sent = api.post(f"/units/{acme}/accesses/bulk", json={
        "action": "resend", "selection": {"ids": [made["access_id"]]}})
    assert sent.get_json()["counts"]["done"] == 1
    details = _mails(app, EMAIL)[0]
    assert "access details" in details
    password = _password_in(details)
    assert password is not None and _status(api, acme) == "initial"
    assert _signed_in(_sign_in(app.test_client(), password))
    assert runner.invoke(main, ["units", "policy", "acme", "--no-passwords-allowed"]) \
        .exit_code == 0
    assert FAILED in _error_of(web, _sign_in(web, password))


def test_common_and_personal_passwords_are_refused(app: Flask) -> None:
    with app.app_context():
        assert len(password_policy.common_passwords()) > 19000
        cases = {
            "Password1234": "password_common",  # case-insensitive
            "QWERTY123456": "password_common",
            "1234567890": "password_common",
            "short": "password_too_short",
            EMAIL: "password_personal",
            "NINA@ACME.EXAMPLE": "password_personal",
            "ninaneu": "password_too_short",
            "x" * 300: "password_too_long",
            CHOSEN: None,
            "nina.neu.acme.2026": None,
        }
        for candidate, key in cases.items():
            assert password_policy.problem(candidate, EMAIL, ("Nina", "Neu")) == key, candidate
        assert password_policy.problem("NinaNeuNina", "n@acme.example", ("NinaNeuNina",)) \
            == "password_personal"
        generated = {password_policy.generate() for _ in range(200)}
        assert len(generated) == 200 and all(len(p) == 12 for p in generated)
        assert all(password_policy.problem(p, EMAIL) is None for p in generated)


def _active_with_password(app: Flask, client: FlaskClient) -> tuple[Api, str, str]:
    acme = _unit(app, passwords=True)
    api = api_for(app, client, "acme")
    _invite(api, acme)
    password = _password_in(_mails(app, EMAIL)[0])
    assert password is not None
    _accept(app)
    return api, acme, password


def test_lock_out_after_failures_and_codes_still_work(
    app: Flask, client: FlaskClient, web: FlaskClient
) -> None:
    _, _, password = _active_with_password(app, client)
    # four wrong passwords from four networks (no throttle hit): soft lock
    for n in range(4):
        resp = _sign_in(app.test_client(), f"wrong-guess-{n}x", ip=f"10.0.{n}.1")
        assert not _signed_in(resp)
    with app.app_context():
        account = lifecycle.by_email(EMAIL)
        assert account is not None and account.failed_code_attempts == 4
    # the right password is refused now (from a browser not known for the address)
    assert FAILED in _error_of(web, _sign_in(web, password))
    # an e-mail code still gets the person in (the 16-digit proof of the mailbox) ...
    login = start(web)
    submit_email(web, login, EMAIL)
    text = _mails(app, EMAIL)[0]
    long_code = re.search(r"\b(\d{4} \d{4} \d{4} \d{4})\b", text)
    assert long_code, text
    resp = submit_code(web, login, long_code.group(1))
    assert resp.status_code == 303 and not path_of(resp).endswith("/code")
    # ... which lifts the lock: the password works again, from any browser
    with app.app_context():
        account = lifecycle.by_email(EMAIL)
        assert account is not None and account.failed_code_attempts == 0
    assert _signed_in(_sign_in(app.test_client(), password, ip="10.9.9.9"))


def test_attempts_are_throttled_per_browser_and_address(
    app: Flask, client: FlaskClient, web: FlaskClient
) -> None:
    _, _, password = _active_with_password(app, client)
    for _ in range(3):
        assert not _signed_in(_sign_in(web, "wrong-guess-xyz"))
    assert _signed_in(_sign_in(web, password))  # clears this browser's count
    for _ in range(5):
        _sign_in(web, "wrong-guess-xyz")
    page = _error_of(web, _sign_in(web, password))
    assert "Too many attempts" in page
    # an e-mail code is not throttled by the password attempts
    login = start(web, prompt="login")
    resp = submit_email(web, login, EMAIL)
    assert path_of(resp).endswith("/code")


def test_the_hash_is_renewed_when_the_parameters_change(
    app: Flask, client: FlaskClient, web: FlaskClient
) -> None:
    _, _, password = _active_with_password(app, client)
    before = _stored_hash(app)
    assert before.startswith("$argon2id$") and "t=1" in before and "m=8192" in before
    assert _signed_in(_sign_in(web, password))
    assert _stored_hash(app) == before  # same parameters: untouched
    with app.app_context():
        live = services()
        live.settings = live.settings.model_copy(update={"argon2_time_cost": 2})
    assert _signed_in(_sign_in(app.test_client(), password))
    after = _stored_hash(app)
    assert after != before and "t=2" in after
    assert _signed_in(_sign_in(app.test_client(), password))


def test_require_totp_applies_to_password_sign_ins(
    app: Flask, client: FlaskClient, web: FlaskClient
) -> None:
    _, _, password = _active_with_password(app, client)
    result = app.test_cli_runner().invoke(main, ["units", "policy", "acme", "--require-totp"])
    assert result.exit_code == 0, result.output
    resp = _sign_in(web, password)
    assert resp.status_code == 303 and "/totp" in path_of(resp)
    with app.app_context():
        assert db.session.scalars(select(Session)).all() == []  # no session before TOTP


def test_staff_may_not_reset_the_password_of_a_stronger_account(app: Flask) -> None:
    from idp.accounts import access_admin, accesses
    from idp.rights import Actor, groups
    from idp.store.models import Account
    from idp.store.unit_of_work import atomic

    acme = _unit(app, passwords=True)
    with app.app_context():
        groups.set_group("acme", "helpers", ["users.read", "users.manage"])
        rows = {}
        for email, roles in (("boss@acme.example", ["main_user"]),
                             ("help@acme.example", ["employee", "helpers"]),
                             ("ann@acme.example", ["employee"])):
            account = Account(email=email, email_verified=True, given_name=email[:4])
            db.session.add(account)
            db.session.commit()
            with atomic():
                rows[email] = accesses.create(account.id, acme, roles, "test", event=None)
        helper = Actor.account(rows["help@acme.example"].account_id)
        boss = access_admin.get(acme, rows["boss@acme.example"].id)
        assert access_admin.act(helper, "reset_password", boss).code == "forbidden"
        ann = access_admin.get(acme, rows["ann@acme.example"].id)
        assert access_admin.act(helper, "reset_password", ann).outcome == "done"
        from idp.factors import passwords

        assert passwords.status(boss.account_id) is None
        assert passwords.status(ann.account_id) == "reset_by_staff"


def test_the_pages_speak_german(app: Flask, web: FlaskClient) -> None:
    _unit(app, passwords=True)
    login = start(web)
    headers = {"Accept-Language": "de"}
    page = web.get(login, headers=headers).get_data(as_text=True)
    assert "Mit einem Passwort anmelden" in page
    page = web.get(login + "/sign-in-password", headers=headers).get_data(as_text=True)
    assert "Mit einem Code anmelden" in page and 'autocomplete="current-password"' in page
    assert 'autocomplete="username"' in page and 'name="csrf_token"' in page


def test_idp_apply_sets_and_exports_the_policy(app: Flask, tmp_path: Any) -> None:
    with app.app_context():
        units.create("ACME", slug="acme")
    config = tmp_path / "units.yaml"
    config.write_text("version: 1\nunits:\n  - slug: acme\n    passwords_allowed: true\n")
    runner = app.test_cli_runner()
    result = runner.invoke(main, ["apply", str(config)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["units", "policy", "acme"])
    assert "passwords_allowed=yes" in result.output
    result = runner.invoke(main, ["export"])
    assert result.exit_code == 0 and "passwords_allowed: true" in result.stdout


def test_a_post_without_the_csrf_token_is_refused(app: Flask, web: FlaskClient) -> None:
    _unit(app, passwords=True)
    login = start(web)
    resp = web.post(login + "/sign-in-password",
                    data={"email": EMAIL, "password": "Whatever-It-Is-99"})
    assert resp.status_code == 400


def test_a_domain_that_requires_sso_never_signs_in_by_password(
    app: Flask, client: FlaskClient, web: FlaskClient
) -> None:
    from idp.domains import registry as domains
    from idp.domains import rules as domain_rules
    from idp.federation.registry import secret_context
    from idp.store import connectors_repo
    from idp.store.models import Connector
    from idp.store.unit_of_work import atomic

    _, acme, password = _active_with_password(app, client)
    assert _signed_in(_sign_in(app.test_client(), password))
    with app.app_context():
        domains.claim("acme", "acme.example")
        domains.verify_manually("acme.example", "registrar letter", "test")
        cid = connectors_repo.new_connector_id()
        with atomic():
            connectors_repo.create(
                acme, "oidc", "ACME OIDC",
                {"issuer": "https://login.acme.example", "client_id": "c"},
                services().sealer.seal(b"s", secret_context(cid)), connector_id=cid)
        domain_rules.set_rules("acme.example", require_sso=True, connector=cid)
        connector = db.session.get(Connector, cid)
        assert connector is not None
        connector.enabled = False  # no usable connector: the "sign-in refused" page
        db.session.commit()
    resp = _sign_in(web, password)
    assert resp.status_code == 403
    with app.app_context():
        assert len(db.session.scalars(select(Session)).all()) == 1  # the earlier one
