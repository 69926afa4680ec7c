"""Logout reaches the relying parties (issue 18 item 3): OpenID Connect Back-Channel
Logout 1.0 and Front-Channel Logout 1.0.

A real relying party endpoint on 127.0.0.1 (tests/support/logout_receiver.py)
validates each logout token as §2.6 says, against the JWKS the issuer publishes,
and its ``sid`` against the one in the ID token the RP received. Deliveries go
through the leased queue with retries (the RP down, then up); the logout page frames
front-channel URIs with ``iss`` and ``sid`` and a CSP that allows exactly those
origins."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from flask import Flask, g
from flask.testing import FlaskClient
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from idp.accounts import lifecycle
from idp.cli import main
from idp.interaction import rp_logout, sessions
from idp.store.models import utcnow
from tests.support import oidc, saml_flow
from tests.support.logout_receiver import LogoutReceiver
from tests.support.webhook_receiver import free_port

BYE = "https://rp.example/bye"
FRONT = "https://rp.example/frontchannel-logout"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"backchannel_allow_private": True}


@pytest.fixture
def rp(app: Flask) -> oidc.RP:
    return oidc.register(app, post_logout_redirect_uris=[BYE])


@pytest.fixture
def receiver(app: Flask, client: FlaskClient, rp: oidc.RP) -> Iterator[LogoutReceiver]:
    issuer = client.get("/.well-known/openid-configuration").get_json()["issuer"]
    made = LogoutReceiver(free_port(), issuer, rp.client_id, lambda: oidc.served_keys(client))
    yield made.start()
    made.stop()


def _sign_in_with_session(app: Flask, client: FlaskClient, rp: oidc.RP,
                          email: str = "ann@corp.example") -> dict[str, Any]:
    """A browser session first, then the RP's sign-in in it: the RP takes part in the
    session and its ID token carries the session's ``sid``."""
    account = oidc.make_account(app, email)
    oidc.start_session(app, client, account)
    return _rp_sign_in(app, client, rp, account)


def _rp_sign_in(app: Flask, client: FlaskClient, rp: oidc.RP, account: str) -> dict[str, Any]:
    """The RP's sign-in in the browser's live session of ``account``."""
    oidc.grant_consent(app, account, rp.client_id, ["openid", "profile", "email"])
    verifier, challenge = oidc.pkce()
    params = oidc.auth_params(rp, code_challenge=challenge, code_challenge_method="S256")
    resp = client.get("/authorize", query_string=params)
    if resp.status_code == 303 and not resp.headers["Location"].startswith(rp.redirect_uri):
        ix_id = oidc.interaction_id(resp)  # the login page with the session: resume
        resp = client.get(f"/authorize/resume/{ix_id}")
    assert resp.status_code == 303 and resp.headers["Location"].startswith(rp.redirect_uri)
    code = oidc.query(resp)["code"]
    si = oidc.SignIn(code, params["state"], params["nonce"], verifier, params)
    tokens = oidc.exchange(client, rp, si).get_json()
    claims = oidc.verify_jwt(client, tokens["id_token"]).claims
    assert claims.get("sid"), "the ID token names the session"
    return {"account": account, "id_claims": claims, **tokens}


def _channels(app: Flask, rp: oidc.RP, *args: str) -> dict[str, Any]:
    with app.app_context():
        result = CliRunner().invoke(main, ["clients", "logout-channels", rp.client_id,
                                           *args, "--json"])
    assert result.exit_code == 0, result.output
    import json

    data: dict[str, Any] = json.loads(result.output)
    return data


def test_discovery_announces_both_channels(client: FlaskClient) -> None:
    meta = client.get("/.well-known/openid-configuration").get_json()
    for name in ("backchannel_logout_supported", "backchannel_logout_session_supported",
                 "frontchannel_logout_supported", "frontchannel_logout_session_supported"):
        assert meta[name] is True, name


def test_rp_initiated_logout_posts_a_valid_logout_token(
    app: Flask, client: FlaskClient, rp: oidc.RP, receiver: LogoutReceiver
) -> None:
    _channels(app, rp, "--backchannel-uri", receiver.url, "--backchannel-session-required")
    signed = _sign_in_with_session(app, client, rp)
    resp = client.get("/logout", query_string={
        "id_token_hint": signed["id_token"], "post_logout_redirect_uri": BYE})
    assert resp.status_code == 303 and resp.headers["Location"] == BYE
    assert rp_logout.deliver_due(app) == 1
    assert receiver.rejected == []
    [claims] = receiver.got
    assert claims["sid"] == signed["id_claims"]["sid"]
    assert claims["sub"] == signed["id_claims"]["sub"] == signed["account"]
    assert claims["aud"] == rp.client_id
    assert rp_logout.deliver_due(app) == 0  # delivered once, not again


def test_a_down_rp_gets_the_token_when_it_is_back(
    app: Flask, client: FlaskClient, rp: oidc.RP, receiver: LogoutReceiver
) -> None:
    _channels(app, rp, "--backchannel-uri", receiver.url)
    signed = _sign_in_with_session(app, client, rp)
    receiver.down = True
    client.post("/logout", data={"id_token_hint": signed["id_token"]})
    assert rp_logout.deliver_due(app) == 0
    assert rp_logout.deliver_due(app) == 0  # not due again before its back-off
    receiver.down = False
    later = utcnow() + timedelta(minutes=1)
    assert rp_logout.deliver_due(app, now=later) == 1
    [claims] = receiver.got
    assert claims["sid"] == signed["id_claims"]["sid"]
    assert receiver.rejected == []


def test_a_refusing_rp_is_retried_and_given_up(
    app: Flask, client: FlaskClient, rp: oidc.RP, receiver: LogoutReceiver
) -> None:
    _channels(app, rp, "--backchannel-uri", receiver.url)
    signed = _sign_in_with_session(app, client, rp)
    receiver.down = True
    client.post("/logout", data={"id_token_hint": signed["id_token"]})
    when = utcnow()
    for _ in range(rp_logout.MAX_ATTEMPTS):
        assert rp_logout.deliver_due(app, now=when) == 0
        when += timedelta(days=1)
    receiver.down = False
    assert rp_logout.deliver_due(app, now=when + timedelta(days=1)) == 0  # dead: no more
    assert receiver.got == []


def test_dashboard_sign_out_and_blocking_reach_the_rp(
    app: Flask, client: FlaskClient, rp: oidc.RP, receiver: LogoutReceiver
) -> None:
    _channels(app, rp, "--backchannel-uri", receiver.url)
    first = _sign_in_with_session(app, client, rp)
    page = client.get("/logout").get_data(as_text=True)  # a page with the CSRF token
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    resp = client.post("/account/sign-out", data={"csrf_token": token.group(1)})
    assert resp.status_code == 303
    assert rp_logout.deliver_due(app) == 1
    assert receiver.got[-1]["sid"] == first["id_claims"]["sid"]
    # An operator blocks the account: every session ends, its RPs are told.
    second = _sign_in_with_session(app, client, rp, "bob@corp.example")
    with app.app_context():
        from idp.store import accounts_repo

        account = accounts_repo.get(second["account"])
        assert account is not None
        assert lifecycle.block(account.email or "")
    assert rp_logout.deliver_due(app) == 1
    assert receiver.got[-1]["sid"] == second["id_claims"]["sid"]
    assert not oidc.has_session(app, client)


def test_no_token_for_an_rp_outside_the_session(
    app: Flask, client: FlaskClient, rp: oidc.RP, receiver: LogoutReceiver
) -> None:
    _channels(app, rp, "--backchannel-uri", receiver.url)
    other = oidc.register(app, name="Other", post_logout_redirect_uris=[BYE])
    signed = _sign_in_with_session(app, client, other)
    client.post("/logout", data={"id_token_hint": signed["id_token"]})
    assert rp_logout.deliver_due(app) == 0
    assert receiver.got == []


def test_front_channel_frames_carry_iss_and_sid_and_csp_allows_them(
    app: Flask, client: FlaskClient, rp: oidc.RP
) -> None:
    _channels(app, rp, "--frontchannel-uri", FRONT, "--frontchannel-session-required")
    signed = _sign_in_with_session(app, client, rp)
    resp = client.get("/logout", query_string={
        "id_token_hint": signed["id_token"], "post_logout_redirect_uri": BYE, "state": "s9"})
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    frames = [unescape(src) for src in re.findall(r'<iframe src="([^"]+)"', page)]
    assert len(frames) == 1
    parts = urlsplit(frames[0])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == FRONT
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["sid"] == signed["id_claims"]["sid"]
    assert query["iss"] == signed["id_claims"]["iss"]
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-src https://rp.example;" in csp and "frame-ancestors 'none'" in csp
    assert f'content="2;url={BYE}?state=s9"' in page  # then on to the RP
    assert not oidc.has_session(app, client)


def test_logout_page_without_frames_keeps_frame_src_closed(
    app: Flask, client: FlaskClient, rp: oidc.RP
) -> None:
    signed = _sign_in_with_session(app, client, rp)
    resp = client.get("/logout", query_string={"id_token_hint": signed["id_token"]})
    assert "<iframe" not in resp.get_data(as_text=True)
    assert "frame-src" not in resp.headers["Content-Security-Policy"]


def test_cli_shows_and_validates_channels(app: Flask, rp: oidc.RP) -> None:
    assert _channels(app, rp)["backchannel_logout_uri"] is None
    with app.app_context():
        bad = CliRunner().invoke(main, ["clients", "logout-channels", rp.client_id,
                                        "--frontchannel-uri", "https://elsewhere.example/fc"])
        assert bad.exit_code != 0 and "redirect URI" in bad.output
        bad = CliRunner().invoke(main, ["clients", "logout-channels", rp.client_id,
                                        "--backchannel-uri", "http://rp.example/bc"])
        assert bad.exit_code != 0 and "backchannel_logout_uri" in bad.output
    set_ = _channels(app, rp, "--frontchannel-uri", FRONT)
    assert set_["frontchannel_logout_uri"] == FRONT
    assert _channels(app, rp, "--frontchannel-uri", "")["frontchannel_logout_uri"] is None


def _saml_request_of(url: str) -> etree._Element:
    query = parse_qs(urlsplit(url).query)
    return etree.fromstring(OneLogin_Saml2_Utils.decode_base64_and_inflate(
        query["SAMLRequest"][0]))


def test_rp_logout_sends_the_sessions_saml_sps_a_logout_request(
    app: Flask, client: FlaskClient, rp: oidc.RP
) -> None:
    oidc.ensure_login_endpoint(app)
    account = oidc.make_account(app, "sam@corp.example")
    oidc.start_session(app, client, account)
    shop = saml_flow.make_sp(app, client, host="shop.example")
    at_shop = shop.accept(*saml_flow.sign_in(app, client, shop, account))
    assert at_shop.get_errors() == []
    signed = _rp_sign_in(app, client, rp, account)
    resp = client.get("/logout", query_string={
        "id_token_hint": signed["id_token"], "post_logout_redirect_uri": BYE, "state": "s7"})
    assert resp.status_code == 303
    assert not oidc.has_session(app, client)  # over at once, whatever the SPs answer
    chain = resp.headers["Location"]
    assert urlsplit(chain).path.startswith("/saml/slo/start/")
    to_shop = client.get(chain)
    assert to_shop.status_code == 302
    url = to_shop.headers["Location"]
    assert url.startswith(shop.sls_url + "?") and "Signature=" in url
    request_xml = _saml_request_of(url)
    assert request_xml.findtext("{urn:oasis:names:tc:SAML:2.0:assertion}NameID") == (
        at_shop.get_nameid())
    # python3-saml validates the signed LogoutRequest strictly and answers
    shop_auth, answer = shop.handle_logout(url)
    assert shop_auth.get_errors() == [], shop_auth.get_last_error_reason()
    assert answer is not None
    back = saml_flow.get_url(client, answer)
    assert back.status_code == 303 and back.headers["Location"] == BYE + "?state=s7"
    assert client.get(chain).status_code != 302  # the chain starts once


def test_dashboard_sign_out_goes_through_saml_single_logout(
    app: Flask, client: FlaskClient
) -> None:
    oidc.ensure_login_endpoint(app)
    account = oidc.make_account(app, "sam@corp.example")
    oidc.start_session(app, client, account)
    shop = saml_flow.make_sp(app, client, host="shop.example")
    at_shop = shop.accept(*saml_flow.sign_in(app, client, shop, account))
    assert at_shop.get_errors() == []
    page = client.get("/logout").get_data(as_text=True)  # a page with the CSRF token
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    resp = client.post("/account/sign-out", data={"csrf_token": token.group(1)})
    assert resp.status_code == 303
    url = client.get(resp.headers["Location"]).headers["Location"]
    shop_auth, answer = shop.handle_logout(url)
    assert shop_auth.get_errors() == [], shop_auth.get_last_error_reason()
    assert answer is not None
    back = saml_flow.get_url(client, answer)
    assert back.status_code == 303 and urlsplit(back.headers["Location"]).path == (
        "/account/signed-out")


def _new_login(app: Flask, client: FlaskClient, account: str) -> None:
    """A finished login in this browser: the new session replaces the one its cookie
    names (what the login pages do)."""
    cookie = client.get_cookie(sessions.COOKIE)
    assert cookie is not None
    with app.test_request_context("/", headers={"Cookie": f"{sessions.COOKIE}={cookie.value}"}):
        sessions.create(account, ["otp"], "urn:unitgate:acr:email-otp")
        token = g.session_cookie
    client.set_cookie(sessions.COOKIE, token, domain="localhost")


def test_a_new_sign_in_of_the_same_account_keeps_the_rps_signed_in(
    app: Flask, client: FlaskClient, rp: oidc.RP, receiver: LogoutReceiver
) -> None:
    _channels(app, rp, "--backchannel-uri", receiver.url)
    signed = _sign_in_with_session(app, client, rp)
    _new_login(app, client, signed["account"])  # step-up: a new session
    assert rp_logout.deliver_due(app) == 0  # nobody is logged out
    client.post("/logout", data={"id_token_hint": signed["id_token"]})
    assert rp_logout.deliver_due(app) == 1  # the RP still took part, and hears of it
    assert receiver.got[-1]["sub"] == signed["account"]
    # Another account's sign-in in this browser logs the previous one out of the RP.
    again = _sign_in_with_session(app, client, rp, "bob@corp.example")
    _new_login(app, client, oidc.make_account(app, "eve@corp.example"))
    assert rp_logout.deliver_due(app) == 1
    assert receiver.got[-1]["sid"] == again["id_claims"]["sid"]


def test_a_front_channel_host_cannot_break_out_of_the_csp(app: Flask) -> None:
    rp = oidc.register(app, redirect_uris=["https://a;script-src.example/cb"])
    with app.app_context():
        bad = CliRunner().invoke(main, ["clients", "logout-channels", rp.client_id,
                                        "--frontchannel-uri", "https://a;script-src.example/f"])
    assert bad.exit_code != 0 and "malformed host" in bad.output


def test_a_password_change_tells_the_rps_of_the_other_sessions_only(
    app: Flask, client: FlaskClient, rp: oidc.RP, receiver: LogoutReceiver
) -> None:
    """A password change ends the person's other browser sessions
    (:func:`idp.factors.passwords.set_own`): their relying parties get a back-channel
    logout; the browser making the change stays, and so do its relying parties."""
    from idp.accounts import lifecycle as accounts
    from idp.factors import passwords
    from idp.store import sessions_repo

    _channels(app, rp, "--backchannel-uri", receiver.url)
    first = _sign_in_with_session(app, client, rp)
    other = app.test_client()
    oidc.start_session(app, other, first["account"])
    second = _rp_sign_in(app, other, rp, first["account"])
    assert second["id_claims"]["sid"] != first["id_claims"]["sid"]
    with app.test_request_context("/"):
        kept = [s.id_hash for s in sessions_repo.for_account(first["account"])]
        account = accounts.get(first["account"])
        assert account is not None and len(kept) == 2
        # the first browser changes the password: keep its session (the older one)
        mine = min(sessions_repo.for_account(first["account"]), key=lambda s: s.created_at)
        passwords.set_own(account, "Quiet-Meadow-Orchard-7", via="password",
                          keep_session=mine.id_hash)
    assert rp_logout.deliver_due(app) == 1
    assert receiver.got[-1]["sid"] == second["id_claims"]["sid"]
    assert oidc.has_session(app, client) and not oidc.has_session(app, other)
