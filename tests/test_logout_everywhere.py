"""Every logout reaches every participant by the channel it registered (issue 18,
the logout gaps left open): whatever ends a session (OIDC ``/logout``, SAML Single
Logout, the dashboard, a block, the sweeper of sessions that timed out unseen),
:func:`idp.interaction.rp_logout.session_ending` tells each OIDC relying party and
each SAML SP.

* A logout that starts at a SAML SP renders the OIDC relying parties' front-channel
  frames, then goes on with the SAML chain.
* Without a browser, SAML SPs that registered a SOAP SingleLogoutService get a signed
  LogoutRequest over SOAP, checked by a real receiver with python3-saml (xmlsec);
  the others are recorded in the audit as not told.
* Sessions that ended unseen are found by the sweeper, once across nodes."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from idp.accounts import lifecycle
from idp.interaction import rp_logout
from idp.saml import registry
from idp.saml.constants import BINDING_SOAP
from idp.services import ephemeral
from idp.store import accounts_repo, saml_repo, sessions_repo
from idp.store.db import db
from idp.store.models import AuditEvent, BackchannelLogout, Session, utcnow
from tests import test_oidc_rp_logout as rp_logout_tests
from tests.support import oidc, saml_flow
from tests.support.logout_receiver import LogoutReceiver
from tests.support.saml_sp import ServiceProvider, with_soap_logout
from tests.support.soap_logout_receiver import SoapLogoutReceiver
from tests.support.webhook_receiver import free_port
from tests.test_oidc_rp_logout import _channels, _rp_sign_in

FRONT = "https://rp.example/frontchannel-logout"

# the RP logout tests' fixtures: the same settings, RP and back-channel receiver
settings_overrides = rp_logout_tests.settings_overrides
rp = rp_logout_tests.rp
receiver = rp_logout_tests.receiver


@pytest.fixture(autouse=True)
def _login_endpoint(app: Flask) -> None:
    oidc.ensure_login_endpoint(app)


@pytest.fixture
def soap(client: FlaskClient) -> Iterator[SoapLogoutReceiver]:
    made = SoapLogoutReceiver(free_port(), saml_flow.idp_metadata(client))
    yield made.start()
    made.stop()


def soap_sp(app: Flask, client: FlaskClient, host: str, soap_url: str | None,
            browser: bool = True) -> ServiceProvider:
    """A python3-saml SP whose metadata also names a SOAP SingleLogoutService at
    ``soap_url`` (``browser``: keep its HTTP-Redirect one too), registered."""
    sp = ServiceProvider(saml_flow.idp_metadata(client), host=host)
    with app.app_context():
        registry.register(with_soap_logout(sp, soap_url, browser), actor="test")
    return sp


def at_sp(app: Flask, client: FlaskClient, sp: ServiceProvider, account: str) -> tuple[str, str]:
    """Sign in at ``sp`` in the browser's session: (NameID, SessionIndex) it got."""
    auth = sp.accept(*saml_flow.sign_in(app, client, sp, account))
    assert auth.get_errors() == [], auth.get_last_error_reason()
    return str(auth.get_nameid()), str(auth.get_session_index())


def block(app: Flask, account_id: str) -> None:
    with app.app_context():
        account = accounts_repo.get(account_id)
        assert account is not None
        assert lifecycle.block(account.email or "")


def not_told(app: Flask) -> list[dict[str, str]]:
    with app.app_context():
        return [dict(e.details) for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == rp_logout.NOT_TOLD))]


# -- 1. a logout started at a SAML SP renders the RPs' front-channel frames ---------

def test_saml_sp_logout_frames_the_rps_then_answers_the_sp(
    app: Flask, client: FlaskClient, rp: oidc.RP
) -> None:
    _channels(app, rp, "--frontchannel-uri", FRONT)
    account = oidc.make_account(app, "sam@corp.example")
    oidc.start_session(app, client, account)
    shop = saml_flow.make_sp(app, client, host="shop.example")
    at_shop = shop.accept(*saml_flow.sign_in(app, client, shop, account))
    signed = _rp_sign_in(app, client, rp, account)
    url, logout_id = shop.logout_redirect(
        at_shop.get_nameid(), at_shop.get_session_index(), at_shop.get_nameid_format())
    resp = saml_flow.get_url(client, url)
    assert resp.status_code == 200
    assert not oidc.has_session(app, client)
    page = resp.get_data(as_text=True)
    [frame] = [unescape(src) for src in re.findall(r'<iframe src="([^"]+)"', page)]
    query = {k: v[0] for k, v in parse_qs(urlsplit(frame).query).items()}
    assert frame.startswith(FRONT + "?") and query["sid"] == signed["id_claims"]["sid"]
    assert "frame-src https://rp.example;" in resp.headers["Content-Security-Policy"]
    resume = re.search(r'content="2;url=(/saml/slo/resume/[^"]+)"', page)
    assert resume is not None
    # another browser cannot take the chain on
    assert app.test_client().get(resume.group(1)).status_code >= 400
    final = client.get(resume.group(1))
    assert final.status_code == 302
    shop_auth, _ = shop.handle_logout(final.headers["Location"], request_id=logout_id)
    assert shop_auth.get_errors() == [], shop_auth.get_last_error_reason()
    assert client.get(resume.group(1)).status_code >= 400  # once


def test_saml_sp_logout_without_frames_answers_at_once(
    app: Flask, client: FlaskClient, rp: oidc.RP
) -> None:
    account = oidc.make_account(app, "sam@corp.example")
    oidc.start_session(app, client, account)
    shop = saml_flow.make_sp(app, client, host="shop.example")
    at_shop = shop.accept(*saml_flow.sign_in(app, client, shop, account))
    url, _ = shop.logout_redirect(
        at_shop.get_nameid(), at_shop.get_session_index(), at_shop.get_nameid_format())
    resp = saml_flow.get_url(client, url)
    assert resp.status_code == 302 and resp.headers["Location"].startswith(shop.sls_url)


# -- 2. browserless logouts reach SAML SPs over SOAP ---------------------------------

def test_a_block_sends_the_sp_a_signed_soap_logout_request(
    app: Flask, client: FlaskClient, soap: SoapLogoutReceiver
) -> None:
    account = oidc.make_account(app, "sam@corp.example")
    oidc.start_session(app, client, account)
    shop = soap_sp(app, client, "shop.example", soap.url)
    name_id, session_index = at_sp(app, client, shop, account)
    soap.down = True
    block(app, account)
    assert not oidc.has_session(app, client)
    assert rp_logout.deliver_due(app) == 0  # down: retried later
    soap.down = False
    assert rp_logout.deliver_due(app, now=utcnow() + timedelta(hours=1)) == 1, soap.rejected
    assert soap.rejected == []
    [got] = soap.got
    assert got["name_id"] == name_id and got["session_index"] == session_index
    assert not_told(app) == []


def test_signing_out_another_browser_tells_its_sp_over_soap(
    app: Flask, client: FlaskClient, soap: SoapLogoutReceiver
) -> None:
    """The dashboard's "sign out elsewhere" (:func:`idp.interaction.sessions.end_others`)
    ends a session whose browser is not there: its SP hears of it over SOAP."""
    from idp.interaction import sessions

    account = oidc.make_account(app, "sam@corp.example")
    oidc.start_session(app, client, account)
    shop = soap_sp(app, client, "shop.example", soap.url)
    name_id, _ = at_sp(app, client, shop, account)
    here = app.test_client()
    oidc.start_session(app, here, account)
    with app.app_context():
        mine = max(sessions_repo.for_account(account), key=lambda r: r.created_at)
        assert sessions.end_others(account, keep=mine.id_hash) == 1
    assert rp_logout.deliver_due(app) == 1
    assert [g["name_id"] for g in soap.got] == [name_id]
    assert oidc.has_session(app, here) and not oidc.has_session(app, client)


def test_an_sp_without_a_soap_endpoint_is_recorded_as_not_told(
    app: Flask, client: FlaskClient
) -> None:
    account = oidc.make_account(app, "sam@corp.example")
    oidc.start_session(app, client, account)
    shop = saml_flow.make_sp(app, client, host="shop.example")
    at_sp(app, client, shop, account)
    block(app, account)
    with app.app_context():
        assert db.session.scalars(select(BackchannelLogout)).all() == []
    [told] = not_told(app)
    assert told["reason"] == "no_soap_endpoint" and told["account_id"] == account


def test_a_browser_logout_uses_soap_for_an_sp_without_a_browser_endpoint(
    app: Flask, client: FlaskClient, soap: SoapLogoutReceiver
) -> None:
    account = oidc.make_account(app, "sam@corp.example")
    oidc.start_session(app, client, account)
    shop = soap_sp(app, client, "shop.example", soap.url, browser=False)
    name_id, _ = at_sp(app, client, shop, account)
    page = client.get("/logout").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    resp = client.post("/account/sign-out", data={"csrf_token": token.group(1)})
    assert resp.status_code == 303
    assert urlsplit(resp.headers["Location"]).path == "/account/signed-out"  # no chain
    assert rp_logout.deliver_due(app) == 1
    assert [g["name_id"] for g in soap.got] == [name_id]


def test_soap_endpoints_are_kept_apart_from_the_browser_ones(
    app: Flask, client: FlaskClient
) -> None:
    soap_sp(app, client, "shop.example", "https://shop.example/slo/soap")
    with app.app_context():
        sp = saml_repo.find("https://shop.example/saml/metadata")
        assert sp is not None
        bindings = {e["binding"]: e["url"] for e in sp.slo_endpoints}
    assert bindings[BINDING_SOAP] == "https://shop.example/slo/soap"
    assert rp_logout.SAML_SOAP == BINDING_SOAP
    with pytest.raises(registry.RegistrationError, match="SOAP SLO URL must be an https"):
        soap_sp(app, client, "erp.example", "http://erp.example/slo/soap")


@pytest.mark.parametrize("settings_overrides", [{"backchannel_allow_private": False}])
def test_a_private_soap_address_is_refused_at_send(
    app: Flask, client: FlaskClient, soap: SoapLogoutReceiver
) -> None:
    """The webhooks' SSRF rules: a SOAP endpoint on a private address (here the
    loopback receiver) is not connected to unless the operator allows it."""
    account = oidc.make_account(app, "sam@corp.example")
    oidc.start_session(app, client, account)
    shop = soap_sp(app, client, "shop.example", soap.url)
    at_sp(app, client, shop, account)
    block(app, account)
    assert rp_logout.deliver_due(app) == 0
    with app.app_context():
        [row] = db.session.scalars(select(BackchannelLogout)).all()
        assert row.kind == "saml" and "refused" in (row.last_error or "")
    assert soap.got == []


# -- 3. sessions that timed out unseen -----------------------------------------------

def _age(app: Flask, account: str, **values: object) -> None:
    with app.app_context():
        db.session.execute(update(Session).where(Session.account_id == account).values(**values))
        db.session.commit()


def test_the_sweeper_tells_the_participants_of_an_expired_session_once(
    app: Flask, client: FlaskClient, rp: oidc.RP, receiver: LogoutReceiver,
    soap: SoapLogoutReceiver,
) -> None:
    _channels(app, rp, "--backchannel-uri", receiver.url)
    account = oidc.make_account(app, "sam@corp.example")
    oidc.start_session(app, client, account)
    shop = soap_sp(app, client, "shop.example", soap.url)
    name_id, _ = at_sp(app, client, shop, account)
    signed = _rp_sign_in(app, client, rp, account)
    bystander = oidc.make_account(app, "bob@corp.example")
    oidc.start_session(app, app.test_client(), bystander)  # no participants: left alone
    assert rp_logout.sweep_unseen(app) == 0  # nothing expired yet
    _age(app, account, expires_at=utcnow() - timedelta(seconds=1))
    _age(app, bystander, expires_at=utcnow() - timedelta(seconds=1))
    assert rp_logout.sweep_unseen(app) == 1
    assert rp_logout.sweep_unseen(app) == 0
    assert rp_logout.deliver_due(app) == 2
    assert [c["sid"] for c in receiver.got] == [signed["id_claims"]["sid"]]
    assert [g["name_id"] for g in soap.got] == [name_id]
    with app.app_context():
        assert sessions_repo.for_account(account) == []
        assert len(sessions_repo.for_account(bystander)) == 1


def test_an_idle_session_is_swept_too(
    app: Flask, client: FlaskClient, rp: oidc.RP, receiver: LogoutReceiver
) -> None:
    _channels(app, rp, "--backchannel-uri", receiver.url)
    account = oidc.make_account(app, "sam@corp.example")
    oidc.start_session(app, client, account)
    _rp_sign_in(app, client, rp, account)
    _age(app, account, last_seen_at=utcnow() - timedelta(days=2))
    assert rp_logout.sweep_unseen(app) == 1
    assert rp_logout.deliver_due(app) == 1 and len(receiver.got) == 1


def test_sweepers_on_several_nodes_tell_each_participant_once(
    app: Flask, client: FlaskClient, rp: oidc.RP, receiver: LogoutReceiver
) -> None:
    _channels(app, rp, "--backchannel-uri", receiver.url)
    accounts = []
    for n in range(3):
        account = oidc.make_account(app, f"p{n}@corp.example")
        browser = app.test_client()
        oidc.start_session(app, browser, account)
        _rp_sign_in(app, browser, rp, account)
        accounts.append(account)
    for account in accounts:
        _age(app, account, expires_at=utcnow() - timedelta(seconds=1))
    # a node that read a session before another ended it commits nothing for it
    with app.app_context():
        stale = sessions_repo.for_account(accounts[0])[0]
        db.session.expunge(stale)
        assert rp_logout.end_unseen(stale) is True
        assert rp_logout.end_unseen(stale) is False
    # while one node holds the sweep lease, another sweeps nothing
    with app.app_context():
        assert ephemeral().add(rp_logout.SWEEP_LEASE, "other-node", 60)
    assert rp_logout.sweep_unseen(app) == 0
    with app.app_context():
        ephemeral().delete(rp_logout.SWEEP_LEASE)
    ended: list[int] = []
    threads = [threading.Thread(target=lambda: ended.append(rp_logout.sweep_unseen(app)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(ended) == 2
    assert rp_logout.deliver_due(app) == 3
    assert len(receiver.got) == 3 and receiver.rejected == []
