"""The dashboard's "Where you are signed in" section (issue 14 item 3): the
account's live sessions with this browser marked, signing out one other session or
all others, the relying parties of each ended session told through a real
back-channel logout endpoint (tests/support/logout_receiver.py), audited; a session
of another account or an impersonation acting as the person can end nothing."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.interaction import rp_logout
from idp.store.db import db
from idp.store.models import AuditEvent
from tests import test_oidc_rp_logout as rp_logout_tests
from tests.support import oidc
from tests.support.logout_receiver import LogoutReceiver
from tests.test_oidc_rp_logout import _channels, _rp_sign_in, _sign_in_with_session

# The relying party with a real back-channel logout endpoint of the RP logout tests.
settings_overrides = rp_logout_tests.settings_overrides
rp = rp_logout_tests.rp
receiver = rp_logout_tests.receiver


def _dashboard(client: FlaskClient) -> tuple[str, str]:
    page = client.get("/account")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None
    return html, token.group(1)


def _section(html: str) -> str:
    found = re.search(r'<section class="ug-section" id="sessions".*?</section>', html, re.S)
    assert found is not None
    return found.group(0)


def _handles(html: str) -> list[str]:
    return re.findall(r'name="session" value="([0-9a-f]+)"', _section(html))


def test_one_other_session_is_signed_out_and_its_rp_told(
    app: Flask, client: FlaskClient, rp: oidc.RP, receiver: LogoutReceiver
) -> None:
    _channels(app, rp, "--backchannel-uri", receiver.url)
    first = _sign_in_with_session(app, client, rp)
    other = app.test_client()
    oidc.start_session(app, other, first["account"])
    second = _rp_sign_in(app, other, rp, first["account"])

    html, token = _dashboard(client)
    section = _section(html)
    assert section.count('<tr class="ug-session') == 2
    assert section.count("This browser") == 1
    assert "e-mail code" in section
    # Only the other session has a Sign out button, named by the sid its RP knows.
    assert _handles(html) == [second["id_claims"]["sid"]]
    assert 'id="sessions-end-all"' in section

    resp = client.post("/account/sessions/end",
                       data={"csrf_token": token, "session": second["id_claims"]["sid"]})
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/account#sessions")
    assert rp_logout.deliver_due(app) == 1
    assert receiver.got[-1]["sid"] == second["id_claims"]["sid"]
    assert oidc.has_session(app, client) and not oidc.has_session(app, other)
    html, _ = _dashboard(client)
    assert "Signed out there." in html
    assert _section(html).count('<tr class="ug-session') == 1
    assert 'id="sessions-end-all"' not in html
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "session.ended_elsewhere")).one()
        assert event.target == first["account"]
        assert event.details["sessions_ended"] == 1


def test_sign_out_everywhere_else_keeps_this_browser(
    app: Flask, client: FlaskClient, rp: oidc.RP, receiver: LogoutReceiver
) -> None:
    _channels(app, rp, "--backchannel-uri", receiver.url)
    first = _sign_in_with_session(app, client, rp)
    others = [app.test_client(), app.test_client()]
    sids = set()
    for other in others:
        oidc.start_session(app, other, first["account"])
        sids.add(_rp_sign_in(app, other, rp, first["account"])["id_claims"]["sid"])
    _, token = _dashboard(client)
    resp = client.post("/account/sessions/end", data={"csrf_token": token})
    assert resp.status_code == 303
    assert rp_logout.deliver_due(app) == 2
    assert {got["sid"] for got in receiver.got} == sids
    assert oidc.has_session(app, client)
    assert not any(oidc.has_session(app, o) for o in others)


def test_nobody_ends_another_accounts_session_or_without_csrf(
    app: Flask, client: FlaskClient, rp: oidc.RP, receiver: LogoutReceiver
) -> None:
    _channels(app, rp, "--backchannel-uri", receiver.url)
    _sign_in_with_session(app, client, rp)
    bob_browser = app.test_client()
    bob = _sign_in_with_session(app, bob_browser, rp, "bob@corp.example")
    _, token = _dashboard(client)
    for handle in (bob["id_claims"]["sid"], "not-a-handle!", "x" * 200):
        resp = client.post("/account/sessions/end", data={"csrf_token": token, "session": handle})
        assert resp.status_code == 303
    assert "That session had already ended." in _dashboard(client)[0]
    assert oidc.has_session(app, bob_browser)
    assert rp_logout.deliver_due(app) == 0
    # Without the CSRF token nothing happens either.
    resp = client.post("/account/sessions/end", data={})
    assert resp.status_code == 400
    assert oidc.has_session(app, bob_browser)
    # Without a session: back to the dashboard (which asks for a sign-in).
    stranger = app.test_client()
    _, token = _dashboard(client)
    assert stranger.post("/account/sessions/end", data={"csrf_token": token}).status_code in (
        303, 400)


def test_section_in_german(app: Flask, client: FlaskClient) -> None:
    account = oidc.make_account(app, "ann@corp.example")
    oidc.start_session(app, client, account)
    html = client.get("/account", headers={"Accept-Language": "de"}).get_data(as_text=True)
    section = _section(html)
    assert "Wo Sie angemeldet sind" in section
    assert "Dieser Browser" in section
    assert "E-Mail-Code" in section


def test_someone_acting_as_the_person_sees_the_list_but_ends_nothing(app: Flask) -> None:
    from tests.test_impersonation import browser, start, world

    ids = world(app)
    ann_browser = app.test_client()
    oidc.start_session(app, ann_browser, ids["ann"])
    web, csrf = browser(app, ids["carl"])
    assert start(web, csrf, ids["sales"], ids["ann_access"], minutes=10).status_code == 201
    html, token = _dashboard(web)
    section = _section(html)
    assert "Someone acting as you" in section and section.count('<tr class="ug-session') == 2
    assert _handles(html) == [] and 'id="sessions-end-all"' not in section
    # (the impersonation guard refuses the POST before the view's own refusal)
    resp = web.post("/account/sessions/end", data={"csrf_token": token})
    assert resp.status_code in (303, 403)
    assert oidc.has_session(app, ann_browser)
    # Ann herself sees the acting session and may end it.
    ann_html, _ = _dashboard(ann_browser)
    assert "Someone acting as you" in _section(ann_html) and len(_handles(ann_html)) == 1


def test_units_are_listed_by_name_with_translated_roles(app: Flask, client: FlaskClient) -> None:
    """Issue 14 item 3 (a): the units the person belongs to, by name (never an id),
    with built-in roles translated and a unit's own groups as named."""
    account = oidc.make_account(app, "ann@corp.example")
    corp = oidc.make_unit(app, account, "Corp GmbH", roles=["main_user", "buyers"])
    oidc.start_session(app, client, account)
    html = client.get("/account", headers={"Accept-Language": "de"}).get_data(as_text=True)
    found = re.search(r'aria-labelledby="companies-title">.*?</section>', html, re.S)
    assert found is not None
    assert "Ihre Unternehmen" in found.group(0) and "Corp GmbH" in found.group(0)
    assert "Rollen: Hauptnutzer/in, buyers" in found.group(0)
    assert corp not in found.group(0)
