"""Impersonation ("log in as account", issue 13 item 2) through HTTP and the services:
who may act as whom (idp.rights), the API start with session and CSRF header, the
banner, ending it by button and by the time limit (a moved clock), the target's
dashboard, the e-mail by policy (a real SMTP server), the audit events, and the
``act`` claim in ID token, access token, userinfo and refreshed tokens."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from idp.accounts import access_admin, accesses
from idp.cli import main
from idp.interaction import impersonation
from idp.release import consent, merchants
from idp.rights import (
    SYSTEM,
    Actor,
    ImpersonationRefused,
    NotPermitted,
    outranks,
    require_impersonation,
    staff,
)
from idp.rights import groups as rights_groups
from idp.saml.answer import ACT_ATTRIBUTE
from idp.saml.attributes import DEFAULT_CLAIMS, scopes_for
from idp.saml.subject import pairwise_id
from idp.services import settings
from idp.store.db import db
from idp.store.models import Account, AuditEvent, Session, utcnow
from idp.store.unit_of_work import atomic
from idp.units import customers
from idp.units import registry as units
from tests.support import oidc, saml_flow
from tests.support.api import api_for, assert_problem
from tests.support.login import CSRF_RE
from tests.support.saml_sp import posted_form
from tests.support.smtp import SmtpSink, text_of


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink) -> dict[str, object]:
    return {"smtp_url": smtp_server.url}


def _access(app: Flask, account_id: str, unit_id: str, roles: list[str]) -> str:
    with app.app_context():
        with atomic():
            row = accesses.create(account_id, unit_id, roles, "test", event=None)
        return row.id


def world(app: Flask) -> dict[str, str]:
    """ACME with Mia (main user), Carl (commercial contact + group ``support`` that
    grants ``impersonate``), Ann and Ben (employees), Sue (``support`` too); Globex
    with Gus (main user + Globex's own ``support``)."""
    with app.app_context():
        acme = customers.create("company", {"name": "ACME"}).id
        sales = units.create("ACME Sales", parent=acme).id
        globex = customers.create("company", {"name": "Globex"}).id
        rights_groups.set_group(acme, "support", ["impersonate", "users.read"])
        rights_groups.set_group(globex, "support", ["impersonate"])
    ids = {"acme": acme, "sales": sales, "globex": globex}
    people = {
        "mia": ("mia@acme.example", "Mia", acme, ["main_user"]),
        "carl": ("carl@acme.example", "Carl", acme, ["commercial_contact", "support"]),
        "sue": ("sue@acme.example", "Sue", acme, ["commercial_contact", "support"]),
        "ann": ("ann@acme.example", "Ann", sales, ["employee"]),
        "ben": ("ben@acme.example", "Ben", acme, ["employee"]),
        "gus": ("gus@globex.example", "Gus", globex, ["main_user", "support"]),
    }
    for key, (email, given, unit, roles) in people.items():
        ids[key] = oidc.make_account(app, email, given_name=given, family_name="Test")
        ids[key + "_access"] = _access(app, ids[key], unit, roles)
    return ids


def browser(app: Flask, account_id: str) -> tuple[FlaskClient, dict[str, str]]:
    """A test browser signed in as ``account_id`` and the CSRF header of its session."""
    web = app.test_client()
    oidc.start_session(app, web, account_id)
    page = web.get("/account")
    assert page.status_code == 200, page.status_code
    found = CSRF_RE.search(page.get_data(as_text=True))
    assert found is not None
    return web, {"X-CSRF-Token": found.group(1)}


def start(web: FlaskClient, csrf: dict[str, str], unit: str, access: str,
          **body: Any) -> Any:  # fmt: skip
    body.setdefault("reason", "Ticket 4711: cannot see invoices")
    return web.post(f"/api/v1/units/{unit}/accesses/{access}/impersonation",
                    json=body, headers=csrf)  # fmt: skip


def events(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# -- who may act as whom: idp.rights ------------------------------------------------


def test_the_rule_more_rights_is_decided_in_rights(app: Flask) -> None:
    ids = world(app)
    with app.app_context():
        carl, gus = Actor.account(ids["carl"]), Actor.account(ids["gus"])
        # an employee of a sub-unit holds a subset of Carl's rights there
        assert not outranks(ids["ann"], carl)
        require_impersonation(carl, ids["ann"], ids["sales"])
        # a main user holds what a commercial contact does not
        assert outranks(ids["mia"], carl)
        with pytest.raises(ImpersonationRefused) as refused:
            require_impersonation(carl, ids["mia"], ids["acme"])
        assert refused.value.code == "outranks"
        # someone who may impersonate in turn is never impersonated
        assert outranks(ids["sue"], carl)
        with pytest.raises(ImpersonationRefused) as refused:
            require_impersonation(carl, ids["carl"], ids["acme"])
        assert refused.value.code == "self"
        # the main user holds no impersonate (explicit only)
        with pytest.raises(NotPermitted) as denied:
            require_impersonation(Actor.account(ids["mia"]), ids["ben"], ids["acme"])
        assert not isinstance(denied.value, ImpersonationRefused)
        assert denied.value.foreign is False
        # another customer's admin holds nothing in ACME: foreign (404 in the API)
        with pytest.raises(NotPermitted) as denied:
            require_impersonation(gus, ids["ben"], ids["acme"])
        assert denied.value.foreign is True
        # staff: an administrator of ACME may act as its main user; a staff member
        # is never acted as
    sam = oidc.make_account(app, "sam@operator.example")
    with app.app_context():
        staff.add("sam@operator.example")
        staff.assign("sam@operator.example", ids["acme"], "administrator")
        require_impersonation(Actor.staff(sam), ids["mia"], ids["acme"])
        assert outranks(sam, carl)
        # the system and API clients have no browser
        with pytest.raises(ImpersonationRefused) as refused:
            require_impersonation(SYSTEM, ids["ben"], ids["acme"])
        assert refused.value.code == "not_a_person"


# -- the API start, the banner, the end ---------------------------------------------


def test_start_banner_and_end_return_to_the_actor(app: Flask, smtp_server: SmtpSink) -> None:
    ids = world(app)
    web, csrf = browser(app, ids["carl"])
    resp = start(web, csrf, ids["sales"], ids["ann_access"], minutes=10)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["account_id"] == ids["ann"] and body["redirect_to"] == "/account"
    page = web.get("/account").get_data(as_text=True)
    assert "ann@acme.example" in page and "ug-impersonation" in page
    assert "You (Carl Test &lt;carl@acme.example&gt;) are acting as Ann Test" in page
    assert "ACME Sales" in page
    # the banner is in the base template: every page shows it (the start page, an
    # error page)
    assert "You (Carl Test" in web.get("/").get_data(as_text=True)
    missing_page = web.get("/account/no-such-page")
    assert missing_page.status_code == 404
    assert "You (Carl Test" in missing_page.get_data(as_text=True)
    # no nesting, and no administration as Ann: the API refuses an acting session
    assert_problem(start(web, csrf, ids["acme"], ids["ben_access"]), 403, "impersonating")
    assert_problem(web.get(f"/api/v1/units/{ids['sales']}/accesses"), 403, "impersonating")
    # in German too
    german = web.get("/account", headers={"Accept-Language": "de-DE,de;q=0.9"})
    german_html = german.get_data(as_text=True)
    assert "handeln als Ann Test" in german_html and "Jetzt beenden" in german_html
    # the e-mail to Ann (policy on by default), with the reason
    mail = smtp_server.last_to("ann@acme.example")
    assert "Carl Test" in text_of(mail) and "Ticket 4711" in text_of(mail)
    # End now: Carl's own session again
    page_csrf = CSRF_RE.search(page)
    assert page_csrf is not None
    done = web.post("/account/impersonation/end", data={"csrf_token": page_csrf.group(1)})
    assert done.status_code == 303
    after = web.get("/account").get_data(as_text=True)
    assert "carl@acme.example" in after and "ug-impersonation" not in after
    started = events(app, "impersonation.started")
    ended = events(app, "impersonation.ended")
    assert len(started) == 1 and len(ended) == 1
    assert started[0].actor_id == ids["carl"] and started[0].on_behalf_of == ids["ann"]
    assert started[0].details["reason"] == "Ticket 4711: cannot see invoices"
    assert started[0].unit_id == ids["sales"]
    assert ended[0].details["how"] == "ended" and ended[0].on_behalf_of == ids["ann"]
    # Ann's dashboard lists it
    ann_web = app.test_client()
    oidc.start_session(app, ann_web, ids["ann"])
    ann_page = ann_web.get("/account").get_data(as_text=True)
    assert "Who acted as you" in ann_page
    assert "Carl Test &lt;carl@acme.example&gt; acted as you for ACME Sales" in ann_page
    assert "Ticket 4711" in ann_page


def test_refusals(app: Flask) -> None:
    ids = world(app)
    web, csrf = browser(app, ids["carl"])
    # a reason is required and bounded
    assert_problem(start(web, csrf, ids["acme"], ids["ben_access"], reason=""), 422)
    assert_problem(start(web, csrf, ids["acme"], ids["ben_access"], reason="x" * 501), 422)
    assert_problem(start(web, csrf, ids["acme"], ids["ben_access"], reason="   "), 422)
    # the time limit cannot exceed IDP_IMPERSONATION_MINUTES
    assert_problem(start(web, csrf, ids["acme"], ids["ben_access"], minutes=31), 422)
    # a main user holds more rights than Carl: 403
    assert_problem(start(web, csrf, ids["acme"], ids["mia_access"]), 403, "impersonation_refused")
    # nor as someone who may impersonate in turn (Sue)
    assert_problem(start(web, csrf, ids["acme"], ids["sue_access"]), 403, "impersonation_refused")
    # nor oneself
    assert_problem(start(web, csrf, ids["acme"], ids["carl_access"]), 403, "impersonation_refused")
    # without the CSRF header: refused
    assert_problem(start(web, {}, ids["acme"], ids["ben_access"]), 403)
    # another customer's admin: ACME's accesses do not exist for them
    gus_web, gus_csrf = browser(app, ids["gus"])
    assert_problem(start(gus_web, gus_csrf, ids["acme"], ids["ben_access"]), 404)
    # an access of ACME addressed under Globex: 404
    assert_problem(start(gus_web, gus_csrf, ids["globex"], ids["ben_access"]), 404)
    # a suspended access, a blocked customer
    with app.app_context():
        access_admin.act(SYSTEM, "suspend", access_admin.get(ids["acme"], ids["ben_access"]))
    assert_problem(start(web, csrf, ids["acme"], ids["ben_access"]), 422, "access_inactive")
    # a blocked customer's people: not even the operator's staff (who keep working
    # in a blocked customer) may act as them
    sam = oidc.make_account(app, "sam@operator.example")
    with app.app_context():
        staff.add("sam@operator.example")
        staff.assign("sam@operator.example", ids["acme"], "administrator")
    sam_web, sam_csrf = browser(app, sam)
    with app.app_context():
        customers.update(ids["acme"], {"status": "blocked"})
    assert_problem(start(sam_web, sam_csrf, ids["sales"], ids["ann_access"]), 422,
                   "access_inactive")  # fmt: skip
    # an administration API client (bearer token) cannot: no browser
    api = api_for(app, app.test_client())
    assert_problem(api.post(
        f"/units/{ids['sales']}/accesses/{ids['ann_access']}/impersonation",
        json={"reason": "test"}), 403)
    # nothing started
    assert events(app, "impersonation.started") == []


def test_the_time_limit_ends_it(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = world(app)
    web, csrf = browser(app, ids["carl"])
    assert start(web, csrf, ids["sales"], ids["ann_access"], minutes=5).status_code == 201
    assert "ug-impersonation" in web.get("/account").get_data(as_text=True)
    later = utcnow() + timedelta(minutes=6)
    monkeypatch.setattr(impersonation, "utcnow", lambda: later)
    page = web.get("/account").get_data(as_text=True)
    assert "ug-impersonation" not in page and "carl@acme.example" in page
    ended = events(app, "impersonation.ended")
    assert [e.details["how"] for e in ended] == ["expired"]


def test_mail_only_when_the_policy_says_so(app: Flask, runner: FlaskCliRunner,
                                           smtp_server: SmtpSink) -> None:  # fmt: skip
    ids = world(app)
    result = runner.invoke(
        main, ["units", "policy", ids["acme"], "--no-notify-impersonation", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["notify_impersonation"] is False
    web, csrf = browser(app, ids["carl"])
    assert start(web, csrf, ids["acme"], ids["ben_access"]).status_code == 201
    web.post("/account/impersonation/end",
             data={"csrf_token": csrf["X-CSRF-Token"]})  # fmt: skip
    # policy on for ACME Sales: Ann hears of it, Ben never does
    web2, csrf2 = browser(app, ids["carl"])
    assert start(web2, csrf2, ids["sales"], ids["ann_access"]).status_code == 201
    smtp_server.last_to("ann@acme.example")
    assert not [m for m in smtp_server.messages if m["To"] == "ben@acme.example"]


# -- tokens carry act -----------------------------------------------------------------


def test_tokens_issued_meanwhile_carry_act_and_die_with_it(app: Flask) -> None:
    ids = world(app)
    rp = oidc.register(app, scope="openid profile email", grant_types=[
        "authorization_code", "refresh_token"])
    oidc.grant_consent(app, ids["ann"], rp.client_id, ["openid", "profile", "email"])
    web, csrf = browser(app, ids["carl"])
    assert start(web, csrf, ids["sales"], ids["ann_access"]).status_code == 201
    verifier, challenge = oidc.pkce()
    params = oidc.auth_params(rp, code_challenge=challenge, code_challenge_method="S256")
    resp = web.get("/authorize", query_string=params)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    q = oidc.query(resp)
    assert "code" in q, q
    si = oidc.SignIn(q["code"], params["state"], params["nonce"], verifier, params, q)
    tokens = oidc.exchange(web, rp, si).get_json()
    id_token = oidc.verify_jwt(web, tokens["id_token"]).claims
    assert id_token["sub"] == ids["ann"] and id_token["act"] == {"sub": ids["carl"]}
    access = oidc.verify_jwt(web, tokens["access_token"]).claims
    assert access["act"] == {"sub": ids["carl"]}
    info = oidc.userinfo(web, tokens["access_token"]).get_json()
    assert info["sub"] == ids["ann"] and info["act"] == {"sub": ids["carl"]}
    refreshed = oidc.refresh(web, rp, tokens["refresh_token"]).get_json()
    assert oidc.verify_jwt(web, refreshed["id_token"]).claims["act"] == {"sub": ids["carl"]}
    assert events(app, "impersonation.tokens_issued")
    # the end: every token of the impersonation dies
    web.post("/account/impersonation/end", data={"csrf_token": csrf["X-CSRF-Token"]})
    assert oidc.userinfo(web, refreshed["access_token"]).status_code == 401
    again = oidc.refresh(web, rp, refreshed["refresh_token"])
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    # Carl's own sign-in afterwards carries no act
    oidc.grant_consent(app, ids["carl"], rp.client_id, ["openid", "profile", "email"])
    verifier, challenge = oidc.pkce()
    params = oidc.auth_params(rp, code_challenge=challenge, code_challenge_method="S256")
    q = oidc.query(web.get("/authorize", query_string=params))
    si = oidc.SignIn(q["code"], params["state"], params["nonce"], verifier, params, q)
    own = oidc.verify_jwt(web, oidc.exchange(web, rp, si).get_json()["id_token"]).claims
    assert own["sub"] == ids["carl"] and "act" not in own


# -- SAML assertions name the impersonator --------------------------------------------


@pytest.mark.parametrize("nameid", ["persistent", "email"])
def test_saml_assertion_carries_the_actor_attribute(app: Flask, nameid: str) -> None:
    oidc.ensure_login_endpoint(app)
    ids = world(app)
    probe = app.test_client()
    sp = saml_flow.make_sp(app, probe, {"nameid_format": nameid})
    with app.app_context():
        merchant = merchants.of_service_provider(sp.entity_id)
        assert merchant is not None
        consent.grant(ids["ann"], merchant.id, scopes_for(DEFAULT_CLAIMS), DEFAULT_CLAIMS)
        consent.grant(ids["carl"], merchant.id, scopes_for(DEFAULT_CLAIMS), DEFAULT_CLAIMS)
        expected = (pairwise_id(ids["carl"], sp.entity_id) if nameid == "persistent"
                    else "carl@acme.example")  # fmt: skip
    web, csrf = browser(app, ids["carl"])
    assert start(web, csrf, ids["sales"], ids["ann_access"]).status_code == 201
    resp, request_id = saml_flow.start(web, sp)
    auth = sp.accept(posted_form(resp)[1], request_id)
    assert auth.get_errors() == [], auth.get_last_error_reason()
    if nameid == "email":
        assert auth.get_nameid() == "ann@acme.example"
    assert auth.get_attributes()[ACT_ATTRIBUTE] == [expected]
    assert auth.get_friendlyname_attributes()["act"] == [expected]
    assert events(app, "impersonation.assertion_issued")
    # after the end: Carl's own assertion, without the attribute
    web.post("/account/impersonation/end", data={"csrf_token": csrf["X-CSRF-Token"]})
    resp, request_id = saml_flow.start(web, sp)
    auth = sp.accept(posted_form(resp)[1], request_id)
    assert auth.get_errors() == [], auth.get_last_error_reason()
    assert ACT_ATTRIBUTE not in auth.get_attributes()
    if nameid == "email":
        assert auth.get_nameid() == "carl@acme.example"


# -- the page actions, read-only dashboard, sign-out, a change mid-way ---------------


def test_form_action_and_a_read_only_dashboard_while_acting(app: Flask) -> None:
    ids = world(app)
    web, csrf = browser(app, ids["carl"])
    token = csrf["X-CSRF-Token"]
    form = {"csrf_token": token, "unit_id": ids["sales"], "access_id": ids["ann_access"]}
    # no reason, a bad time limit, a main user, another unit's access: refused
    assert web.post("/account/impersonation/start", data={**form, "reason": " "}).status_code == 400
    assert web.post("/account/impersonation/start",
                    data={**form, "reason": "x", "minutes": "99"}).status_code == 400
    assert web.post("/account/impersonation/start", data={
        **form, "unit_id": ids["acme"], "access_id": ids["mia_access"], "reason": "x",
    }).status_code == 403
    assert web.post("/account/impersonation/start", data={
        **form, "unit_id": ids["globex"], "access_id": ids["gus_access"], "reason": "x",
    }).status_code == 404
    # without the CSRF token: refused
    no_csrf = {k: v for k, v in form.items() if k != "csrf_token"}
    assert web.post("/account/impersonation/start",
                    data={**no_csrf, "reason": "x"}).status_code == 400
    assert events(app, "impersonation.started") == []
    started = web.post("/account/impersonation/start", data={**form, "reason": "Ticket 1"})
    assert started.status_code == 303 and started.headers["Location"].endswith("/account")
    assert "You (Carl Test" in web.get("/account").get_data(as_text=True)
    # Ann's own settings cannot be changed by Carl in her name
    assert web.post("/account/profile", data={"csrf_token": token,
                                              "given_name": "Hacked"}).status_code == 403
    assert web.post("/account/two-step/setup", data={"csrf_token": token}).status_code == 403
    assert web.post("/account/impersonation/start",
                    data={**form, "reason": "again"}).status_code == 403
    with app.app_context():
        assert db.session.get(Account, ids["ann"]).given_name == "Ann"  # type: ignore[union-attr]


def test_signing_out_while_acting_ends_it_and_both_sessions(app: Flask) -> None:
    ids = world(app)
    web, csrf = browser(app, ids["carl"])
    assert start(web, csrf, ids["sales"], ids["ann_access"]).status_code == 201
    out = web.post("/account/sign-out", data={"csrf_token": csrf["X-CSRF-Token"]})
    assert out.status_code == 303
    assert [e.details["how"] for e in events(app, "impersonation.ended")] == ["signed_out"]
    assert web.get("/account").status_code == 303  # signed out: to the login pages
    with app.app_context():
        assert db.session.scalars(select(Session).where(
            Session.account_id.in_([ids["carl"], ids["ann"]]))).all() == []


def test_suspending_the_target_mid_way_ends_it_and_its_tokens(app: Flask) -> None:
    ids = world(app)
    rp = oidc.register(app, scope="openid profile email",
                       grant_types=["authorization_code", "refresh_token"])  # fmt: skip
    oidc.grant_consent(app, ids["ann"], rp.client_id, ["openid", "profile", "email"])
    web, csrf = browser(app, ids["carl"])
    assert start(web, csrf, ids["sales"], ids["ann_access"]).status_code == 201
    verifier, challenge = oidc.pkce()
    params = oidc.auth_params(rp, code_challenge=challenge, code_challenge_method="S256")
    q = oidc.query(web.get("/authorize", query_string=params))
    si = oidc.SignIn(q["code"], params["state"], params["nonce"], verifier, params, q)
    tokens = oidc.exchange(web, rp, si).get_json()
    assert oidc.userinfo(web, tokens["access_token"]).status_code == 200
    # ACME's administration suspends Ann's access while Carl acts as her
    api = api_for(app, app.test_client(), ids["acme"])
    suspended = api.post(f"/units/{ids['sales']}/accesses/{ids['ann_access']}/suspend")
    assert suspended.status_code == 200
    assert oidc.userinfo(web, tokens["access_token"]).status_code == 401
    assert oidc.refresh(web, rp, tokens["refresh_token"]).status_code == 400
    page = web.get("/account").get_data(as_text=True)
    assert "carl@acme.example" in page and "ug-impersonation" not in page
    assert [e.details["how"] for e in events(app, "impersonation.ended")] == ["access_ended"]


def test_idp_apply_sets_and_idp_export_shows_the_notify_policy(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    ids = world(app)
    with app.app_context():
        slug = units.get(ids["acme"]).slug
    config = tmp_path / "units.yaml"
    config.write_text(f"version: 1\nunits:\n  - slug: {slug}\n    notify_impersonation: false\n")
    result = runner.invoke(main, ["apply", str(config), "--json"])
    assert result.exit_code == 0, result.output
    changes = json.loads(result.output)["changes"]
    assert [(c["action"], c["kind"], c["fields"]) for c in changes] == [
        ("update", "unit_policy", {"notify_impersonation": {"from": True, "to": False}})]
    assert [e.details for e in events(app, "unit.policy")] == [{"notify_impersonation": False}]
    exported = runner.invoke(main, ["export"])
    assert exported.exit_code == 0, exported.output
    assert "notify_impersonation: false" in exported.output
    shown = runner.invoke(main, ["units", "policy", slug])
    assert "notify_impersonation=no" in shown.output


def test_a_staff_processor_with_impersonate_never_reaches_a_main_user(app: Flask) -> None:
    ids = world(app)
    pia = oidc.make_account(app, "pia@operator.example")
    with app.app_context():
        staff.add("pia@operator.example")
        staff.assign("pia@operator.example", ids["acme"], "processor",
                     ["impersonate", "users.read", "orders.create"])  # fmt: skip
        processor = Actor.staff(pia)
        require_impersonation(processor, ids["ann"], ids["sales"])  # an employee: yes
        with pytest.raises(ImpersonationRefused) as refused:
            require_impersonation(processor, ids["mia"], ids["acme"])
        assert refused.value.code == "outranks"
        with pytest.raises(ImpersonationRefused):  # Carl can approve; Pia cannot
            require_impersonation(processor, ids["carl"], ids["acme"])


def test_an_idle_acting_session_signs_out(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = world(app)
    with app.app_context():
        monkeypatch.setattr(settings(), "session_idle_minutes", 5)
    web, csrf = browser(app, ids["carl"])
    assert start(web, csrf, ids["sales"], ids["ann_access"]).status_code == 201
    later = utcnow() + timedelta(minutes=6)  # idle, the 30 minutes not over
    monkeypatch.setattr(impersonation, "utcnow", lambda: later)
    assert web.get("/account").status_code == 303  # signed out: to the login pages
    assert [e.details["how"] for e in events(app, "impersonation.ended")] == ["signed_out"]
