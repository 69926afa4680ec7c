"""Invitations end to end (issue 12, item 5): a new contact is invited by e-mail with
a single-use link and, with a mobile number, an SMS registration code that a real
local HTTP gateway receives; the person registers, lands in the normal sign-in and
the wallet form, and the access becomes active. Wrong codes, burning, expiry,
resend, revoke, and the SMS gateway down then up."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from idp.accounts import accesses, invites
from idp.mail.outbox import courier, deliver_due, open_body
from idp.release.claims import released_claims
from idp.rights import SYSTEM
from idp.store import outbox_repo
from idp.store.db import db
from idp.store.models import AccessInvitation, utcnow
from idp.store.unit_of_work import atomic
from idp.units import registry as units
from tests.support.api import Api, api_for, assert_problem
from tests.support.login import add_protocol_stand_in, csrf_token, path_of
from tests.support.sms import SmsReceiver

LINK_RE = re.compile(r"http://localhost/invitation/([A-Za-z0-9_\-]+)")
SMS_CODE_RE = re.compile(r": ([A-Z0-9]{8})$")
MOBILE = "+49 151 2345 6789"


@pytest.fixture
def settings_overrides(gateway: SmsReceiver) -> dict[str, object]:
    return {"sms_url": gateway.url, "sms_token": "gw-secret"}


@pytest.fixture
def web(app: Flask) -> FlaskClient:
    add_protocol_stand_in(app)
    return app.test_client()


def _unit(app: Flask) -> str:
    with app.app_context():
        return units.create("ACME", slug="acme").id


def _invite(api: Api, unit_id: str, email: str = "nina@acme.example",
            mobile: str | None = MOBILE) -> dict:
    resp = api.post(f"/units/{unit_id}/contacts", json={
        "email": email, "given_name": "Nina", "family_name": "Neu", "mobile": mobile,
        "roles": ["employee"], "platform_access": True,
    })
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return dict(resp.get_json())


def mails_to(app: Flask, email: str) -> list[str]:
    """The text bodies of the e-mails to ``email`` in the outbox, newest first."""
    courier(app).drain()
    with app.app_context():
        out = []
        for message in outbox_repo.recent(200):
            if message.kind == "email" and message.payload.get("to") == email:
                body = open_body(message)
                assert body is not None
                out.append(body["text"])
        return out


def link_token(app: Flask, email: str) -> str:
    found = LINK_RE.search(mails_to(app, email)[0])
    assert found, mails_to(app, email)[0]
    return found.group(1)


def sms_code(gateway: SmsReceiver, count: int) -> str:
    text = gateway.wait_for(count)[count - 1].json()["text"]
    found = SMS_CODE_RE.search(text)
    assert found, text
    return found.group(1)


def _post_code(web: FlaskClient, token: str, code: str) -> object:
    page = web.get(f"/invitation/{token}")
    assert page.status_code == 200
    return web.post(f"/invitation/{token}",
                    data={"csrf_token": csrf_token(page.get_data(as_text=True)), "code": code})


def test_invite_register_with_sms_code_sign_in_wallet_and_active_access(
    app: Flask, client: FlaskClient, web: FlaskClient, gateway: SmsReceiver
) -> None:
    acme = _unit(app)
    api = api_for(app, client, "acme")
    made = _invite(api, acme)
    assert made["status"] == "invited" and made["mobile"] == "+4915123456789"
    assert made["invitation"]["status"] == "pending" and made["invitation"]["sms_required"]
    assert "token" not in str(made["invitation"])

    token = link_token(app, "nina@acme.example")
    received = gateway.wait_for(1)[0]
    assert received.path == "/sms"
    assert received.headers["authorization"] == "Bearer gw-secret"
    assert received.headers["content-type"] == "application/json"
    assert received.json()["to"] == "+4915123456789"
    code = sms_code(gateway, 1)
    assert len(code) == 8 and not set(code) & set("0O1lI5S2Z8B")
    # the sealed SMS text is dropped once the gateway took it
    with app.app_context():
        sms = [m for m in outbox_repo.recent(10) if m.kind == "sms"]
        assert sms and sms[0].status == "sent" and "body" not in sms[0].payload

    page = web.get(f"/invitation/{token}")
    assert page.status_code == 200 and 'name="code"' in page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    empty = _post_code(web, token, "  ")
    assert empty.status_code == 200 and "required" in empty.get_data(as_text=True)
    wrong = _post_code(web, token, "AAAAAAAA")
    assert wrong.status_code == 200
    assert "4 more tries" in wrong.get_data(as_text=True)

    resp = _post_code(web, token, code.lower()[:4] + "-" + code[4:])  # forgiving input
    assert resp.status_code == 303 and path_of(resp).endswith("/profile"), resp.status_code
    profile = web.get(resp.headers["Location"])
    html = profile.get_data(as_text=True)
    assert profile.status_code == 200 and 'value="Nina"' in html
    resp = web.post(resp.headers["Location"], data={
        "csrf_token": csrf_token(html), "given_name": "Nina", "family_name": "Neumann",
    })
    assert resp.status_code == 303
    resp = web.get(resp.headers["Location"])  # the dashboard's resume
    assert resp.status_code == 303 and path_of(resp) == "/account"
    assert web.get("/account").status_code == 200

    with app.app_context():
        row = accesses.find(made["account_id"], acme)
        assert row is not None and row.status == "active" and row.grants()
        account = row.account
        assert account.email_verified and account.family_name == "Neumann"
    state = api.get(f"/units/{acme}/accesses/{made['access_id']}/invitation").get_json()
    assert state["status"] == "used" and state["used_at"]
    # the link is single use
    again = web.get(f"/invitation/{token}")
    assert again.status_code == 410 and "already used" in again.get_data(as_text=True)

    # a merchant sign-in now carries the unit's org claims
    resp = web.get("/_test/start", query_string={"scope": "openid org"})
    while resp.status_code == 303 and "/_test/resume/" not in resp.headers["Location"]:
        location = resp.headers["Location"]
        if location.endswith("/consent"):
            page = web.get(location)
            resp = web.post(location, data={
                "csrf_token": csrf_token(page.get_data(as_text=True)), "decision": "allow"})
        else:
            resp = web.get(location)
    final = web.get(resp.headers["Location"]).get_json()
    assert final["finished"] and final["unit_id"] == acme
    with app.app_context():
        from idp.accounts import lifecycle

        claims = released_claims(lifecycle.get(made["account_id"]), ["org"], final["unit_id"])
        assert claims["org_id"] == acme and claims["roles"] == ["employee"]


def test_wrong_codes_burn_the_invitation_until_resent(
    app: Flask, client: FlaskClient, web: FlaskClient, gateway: SmsReceiver
) -> None:
    acme = _unit(app)
    api = api_for(app, client, "acme")
    made = _invite(api, acme)
    token = link_token(app, "nina@acme.example")
    code = sms_code(gateway, 1)
    for left in (4, 3, 2, 1):
        resp = _post_code(web, token, "CCCCCCCC")
        assert f"{left} more tr" in resp.get_data(as_text=True)
    burnt = _post_code(web, token, "CCCCCCCC")
    assert burnt.status_code == 410
    assert "administrator" in burnt.get_data(as_text=True)
    # even the right code no longer works
    gone = web.get(f"/invitation/{token}")
    assert gone.status_code == 410
    state = api.get(f"/units/{acme}/accesses/{made['access_id']}/invitation").get_json()
    assert state["status"] == "revoked" and state["reason"] == "too_many_attempts"
    assert state["attempts"] == 5
    assert code  # (received, never used)
    # a resend gives a new link and a new code, which work
    resent = api.post(f"/units/{acme}/accesses/{made['access_id']}/invitation")
    assert resent.status_code == 200 and resent.get_json()["status"] == "pending"
    new_token = link_token(app, "nina@acme.example")
    assert new_token != token
    resp = _post_code(web, new_token, sms_code(gateway, 2))
    assert resp.status_code == 303


def test_resend_invalidates_the_previous_link_and_code(
    app: Flask, client: FlaskClient, web: FlaskClient, gateway: SmsReceiver
) -> None:
    acme = _unit(app)
    api = api_for(app, client, "acme")
    made = _invite(api, acme)
    old_token = link_token(app, "nina@acme.example")
    old_code = sms_code(gateway, 1)
    with app.app_context():
        assert invites.resend(made["account_id"], acme, SYSTEM)
        row = accesses.find(made["account_id"], acme)
        assert row is not None and row.details_sent_at is not None
    new_token = link_token(app, "nina@acme.example")
    new_code = sms_code(gateway, 2)
    assert new_token != old_token and new_code != old_code
    assert web.get(f"/invitation/{old_token}").status_code == 410
    # the old code does not open the new link either
    resp = _post_code(web, new_token, old_code)
    assert resp.status_code == 200 and "more tries" in resp.get_data(as_text=True)
    assert _post_code(web, new_token, new_code).status_code == 303


def test_bulk_resend_re_invites_the_invited_and_refuses_the_rest(
    app: Flask, client: FlaskClient, web: FlaskClient, gateway: SmsReceiver
) -> None:
    """The access list's bulk "resend access details" is a re-invite: a new link and
    SMS code for an invited contact (the old ones stop working), refused for an access
    that has nothing to register."""
    acme = _unit(app)
    api = api_for(app, client, "acme")
    made = _invite(api, acme)
    resp = api.post(f"/units/{acme}/contacts", json={  # notifications only: no details
        "email": "otto@acme.example", "given_name": "Otto", "family_name": "O",
        "roles": ["operational_contact"], "platform_access": False,
    })
    assert resp.status_code == 201, resp.get_data(as_text=True)
    other = resp.get_json()
    old_token = link_token(app, "nina@acme.example")
    sms_code(gateway, 1)
    resp = api.post(f"/units/{acme}/accesses/bulk", json={
        "action": "resend", "selection": {"ids": [made["access_id"], other["access_id"]]},
    })
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["counts"]["done"] == 1
    assert body["items"] == [
        {"id": other["access_id"], "outcome": "refused", "code": "not_invited"}
    ]
    new_token = link_token(app, "nina@acme.example")
    assert new_token != old_token
    assert web.get(f"/invitation/{old_token}").status_code == 410
    assert _post_code(web, new_token, sms_code(gateway, 2)).status_code == 303


def test_revoke_and_expiry_give_a_clear_page(
    app: Flask, client: FlaskClient, web: FlaskClient, gateway: SmsReceiver
) -> None:
    acme = _unit(app)
    api = api_for(app, client, "acme")
    made = _invite(api, acme, mobile=None)
    token = link_token(app, "nina@acme.example")
    page = web.get(f"/invitation/{token}").get_data(as_text=True)
    assert 'name="code"' not in page  # no mobile number: the link alone
    path = f"/units/{acme}/accesses/{made['access_id']}/invitation"
    assert api.delete(path).status_code == 204
    assert_problem(api.delete(path), 409, "no_pending_invitation")
    resp = web.get(f"/invitation/{token}")
    assert resp.status_code == 410 and "new invitation" in resp.get_data(as_text=True)
    assert api.get(path).get_json()["status"] == "revoked"

    assert api.post(path).status_code == 200
    token = link_token(app, "nina@acme.example")
    with app.app_context(), atomic():
        for row in db.session.query(AccessInvitation).all():
            row.expires_at = utcnow() - timedelta(minutes=1)
    resp = web.get(f"/invitation/{token}")
    assert resp.status_code == 410 and "expired" in resp.get_data(as_text=True)
    assert api.get(path).get_json()["status"] == "expired"
    page = web.get("/invitation/not-a-real-token")
    assert page.status_code == 404 and "administrator" in page.get_data(as_text=True)
    assert gateway.received == []  # no mobile, no SMS


def test_a_post_to_a_stale_link_is_a_page_not_an_error(app: Flask, web: FlaskClient) -> None:
    page = web.get("/invitation/x")
    assert page.status_code == 404
    resp = web.post("/invitation/" + "x" * 300, data={"code": "A"})
    assert resp.status_code in (400, 404)  # the CSRF check or the unknown page


def test_the_gateway_down_then_up_delivers_through_the_outbox(
    app: Flask, client: FlaskClient, gateway: SmsReceiver
) -> None:
    acme = _unit(app)
    api = api_for(app, client, "acme")
    gateway.stop()
    made = _invite(api, acme)
    courier(app).drain()
    with app.app_context():
        sms = next(m for m in outbox_repo.recent(10) if m.kind == "sms")
        assert sms.status == "pending" and sms.attempts == 1 and sms.last_error
    gateway.start()
    assert deliver_due(app, now=utcnow() + timedelta(minutes=1)) >= 1
    assert gateway.wait_for(1)[0].json()["to"] == "+4915123456789"
    # a gateway answering 500 is a failed attempt too
    gateway.status = 500
    with app.app_context():
        assert invites.resend(made["account_id"], acme, SYSTEM)
    courier(app).drain()
    gateway.wait_for(2)
    with app.app_context():
        newest = next(m for m in outbox_repo.recent(10) if m.kind == "sms")
        assert newest.status == "pending" and "500" in (newest.last_error or "")


class TestMessagesApiShape:
    """The adapter shaped like a widely used provider's messages API."""

    @pytest.fixture
    def settings_overrides(self, gateway: SmsReceiver) -> dict[str, object]:
        return {"sms_provider": "twilio-shaped", "sms_url": gateway.base,
                "sms_account": "AC123", "sms_token": "auth-tok", "sms_from": "+15550001111"}

    def test_form_post_with_basic_auth(
        self, app: Flask, client: FlaskClient, gateway: SmsReceiver
    ) -> None:
        import base64

        acme = _unit(app)
        _invite(api_for(app, client, "acme"), acme)
        received = gateway.wait_for(1)[0]
        assert received.path == "/2010-04-01/Accounts/AC123/Messages.json"
        assert received.headers["content-type"] == "application/x-www-form-urlencoded"
        expected = base64.b64encode(b"AC123:auth-tok").decode()
        assert received.headers["authorization"] == f"Basic {expected}"
        form = received.form()
        assert form["To"] == "+4915123456789" and form["From"] == "+15550001111"
        assert SMS_CODE_RE.search(form["Body"])


class TestDevelopmentConsole:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"dev_mode": True}

    def test_sms_is_printed_and_shown_on_dev_outbox(
        self, app: Flask, client: FlaskClient, capsys: pytest.CaptureFixture[str]
    ) -> None:
        acme = _unit(app)
        _invite(api_for(app, client, "acme"), acme)
        courier(app).drain()
        assert "DEVELOPMENT SMS" in capsys.readouterr().err
        page = client.get("/dev/outbox").get_data(as_text=True)
        assert "+4915123456789" in page and "registration code" in page


def test_the_cli_adds_contacts_and_lists_resends_and_revokes_invitations(
    app: Flask, runner: FlaskCliRunner, gateway: SmsReceiver
) -> None:
    import json

    from idp.cli import main

    _unit(app)
    result = runner.invoke(main, [
        "contacts", "add", "--unit", "acme", "--email", "cli@acme.example",
        "--given-name", "Cli", "--family-name", "User", "--mobile", "+43 660 1234567",
        "--role", "employee", "--json"])
    assert result.exit_code == 0, result.stdout
    made = json.loads(result.stdout)
    assert made["status"] == "invited" and made["invitation"]["sms_required"] is True
    assert gateway.wait_for(1)[0].json()["to"] == "+436601234567"
    again = runner.invoke(main, [
        "contacts", "add", "--unit", "acme", "--email", "cli@acme.example",
        "--given-name", "C", "--family-name", "U", "--json"])
    assert again.exit_code == 1 and json.loads(again.stdout)["error"] == "person_exists"
    bad = runner.invoke(main, [
        "contacts", "add", "--unit", "acme", "--email", "x@acme.example",
        "--given-name", "C", "--family-name", "U", "--mobile", "12345", "--json"])
    assert bad.exit_code == 1 and json.loads(bad.stdout)["error"] == "invalid_mobile"

    listed = json.loads(runner.invoke(main, ["invitations", "list", "--json"]).stdout)
    assert [(r["email"], r["status"]) for r in listed] == [("cli@acme.example", "pending")]
    assert "token" not in json.dumps(listed)
    resent = runner.invoke(main, ["invitations", "resend", "cli@acme.example", "--unit",
                                 "acme", "--json"])
    assert resent.exit_code == 0, resent.stdout
    listed = json.loads(runner.invoke(main, ["invitations", "list", "--json"]).stdout)
    assert sorted((r["status"], r["reason"]) for r in listed) == [
        ("pending", None), ("revoked", "replaced")]
    assert runner.invoke(main, ["invitations", "revoke", "cli@acme.example", "--unit", "acme",
                               "--json"]).exit_code == 0
    gone = runner.invoke(main, ["invitations", "revoke", "cli@acme.example", "--unit", "acme",
                               "--json"])
    assert gone.exit_code == 1 and json.loads(gone.stdout)["error"] == "no_pending_invitation"
    pending = json.loads(runner.invoke(main, ["invitations", "list", "--pending",
                                             "--json"]).stdout)
    assert pending == []


def test_a_domain_that_requires_sso_gets_its_own_sign_in_not_the_link(
    app: Flask, client: FlaskClient, web: FlaskClient
) -> None:
    from idp.domains import registry as domains
    from idp.domains import rules as domain_rules

    acme = _unit(app)
    with app.app_context():
        domains.claim("acme", "acme.example")
        domains.verify_manually("acme.example", "registrar letter", "test")
        from idp.federation.registry import secret_context
        from idp.services import services
        from idp.store import connectors_repo
        from idp.store.models import Connector

        cid = connectors_repo.new_connector_id()
        with atomic():
            connectors_repo.create(
                acme, "oidc", "ACME OIDC",
                {"issuer": "https://login.acme.example", "client_id": "c"},
                services().sealer.seal(b"s", secret_context(cid)), connector_id=cid)
        domain_rules.set_rules("acme.example", require_sso=True, connector=cid)
        db.session.get(Connector, cid).enabled = False  # no usable connector
        db.session.commit()
    api = api_for(app, client, "acme")
    made = _invite(api, acme, mobile=None)
    token = link_token(app, "nina@acme.example")
    resp = _post_code(web, token, "")
    assert resp.status_code == 403  # no usable connector: refused, never signed in by link
    assert "administrator" in resp.get_data(as_text=True)
    assert web.get_cookie("ug_session") is None
    with app.app_context():
        row = accesses.find(made["account_id"], acme)
        assert row is not None and row.status == "active"
