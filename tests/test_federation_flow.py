"""Federated sign-in through the app, against the real upstream OpenID provider:
just-in-time accounts, owned-field updates, linking only with an e-mail code, and
the refusals of the federation rules. Runs on every storage backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.accounts import accesses
from idp.federation.registry import callback_url, secret_context
from idp.interaction import pending as interaction
from idp.services import services
from idp.store import connectors_repo
from idp.store.db import db
from idp.store.models import Access, Account, Domain, OutboxMessage, Unit, UpstreamIdentity
from idp.store.unit_of_work import atomic
from tests.support.upstream import Upstream

TENANT_A = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"


def make_unit(app: Flask, slug: str = "acme", domains: tuple[str, ...] = ("acme.example",)
              ) -> str:
    with app.app_context():
        unit = Unit(name=slug.title(), slug=slug)
        db.session.add(unit)
        db.session.flush()
        for name in domains:
            db.session.add(Domain(unit_id=unit.id, name=name, state="verified", challenge="x",
                                  deadline_at=datetime.now(UTC) + timedelta(days=1),
                                  verified_at=datetime.now(UTC), verified_method="manual"))
        db.session.commit()
        return unit.id


def make_connector(app: Flask, upstream: Upstream, unit_id: str, kind: str,
                   settings: dict[str, Any]) -> str:
    """A connector whose client is registered upstream with its real callback URL."""
    with app.app_context():
        cid = connectors_repo.new_connector_id()
        if kind == "microsoft":
            client_id, secret = upstream.entra_app(callback_url(cid))
        else:
            client_id, secret = upstream.register_client(settings["issuer"], callback_url(cid))
        sealed = services().sealer.seal(secret.encode(), secret_context(cid))
        with atomic():
            connectors_repo.create(unit_id, kind, kind.title(),
                                   {**settings, "client_id": client_id}, sealed, connector_id=cid)
        return cid


def begin(app: Flask, client: FlaskClient) -> str:
    """A pending interaction bound to ``client``'s browser, as /authorize makes one."""
    with app.test_request_context("/authorize"):
        from flask import g

        ix = interaction.start(protocol="oidc", client_id="merchant", client_name="Shop",
                               resume_endpoint="oidc.resume", scopes=["openid"])
        token = g.interaction_browser_token
    client.set_cookie(interaction.BROWSER_COOKIE, token, domain="localhost")
    return ix.id


def sso(app: Flask, client: FlaskClient, upstream: Upstream, cid: str, sub: str,
        claims: dict[str, Any]) -> Any:
    ix_id = begin(app, client)
    resp = client.get(f"/federation/{cid}/start?ix={ix_id}")
    assert resp.status_code == 303
    upstream.login_as(sub, claims)
    back = urlsplit(upstream.authorize(resp.headers["Location"]))
    assert back.path == f"/federation/{cid}/callback"
    return client.get(f"{back.path}?{back.query}")


GOOGLE = {"email": "alice@acme.example", "email_verified": True, "hd": "acme.example",
          "given_name": "Alice", "family_name": "Buyer", "employeeId": "P-100",
          "department": "Purchasing", "costCenter": "CC-7", "groups": ["Purchasing"]}


@pytest.fixture
def google(app: Flask, upstream: Upstream) -> tuple[str, str]:
    unit_id = make_unit(app)
    cid = make_connector(app, upstream, unit_id, "google", {
        "issuer": upstream.google_issuer, "hosted_domains": ["acme.example"],
        "role_map": {"Purchasing": "buyer", "Approvers": "approver"},
        "default_roles": ["employee"]})
    return unit_id, cid


def test_first_sign_in_creates_the_account_in_the_unit(
    app: Flask, client: FlaskClient, upstream: Upstream, google: tuple[str, str]
) -> None:
    unit_id, cid = google
    resp = sso(app, client, upstream, cid, "g-alice", GOOGLE)
    assert resp.status_code == 303
    assert client.get_cookie("ug_session") is not None
    with app.app_context():
        acct = db.session.query(Account).filter_by(email="alice@acme.example").one()
        assert acct.given_name == "Alice"
        (member,) = accesses.of_account(acct.id)  # employer facts are the unit's access's
        assert (member.personnel_number, member.cost_centre, member.department) == (
            "P-100", "CC-7", "Purchasing")
        assert member.unit_id == unit_id and sorted(member.roles) == ["buyer", "employee"]
        link = db.session.query(UpstreamIdentity).filter_by(account_id=acct.id).one()
        assert (link.connector_id, link.issuer, link.subject) == (
            cid, upstream.google_issuer, "g-alice")


def test_later_sign_in_updates_only_what_the_source_owns(
    app: Flask, client: FlaskClient, upstream: Upstream, google: tuple[str, str]
) -> None:
    _, cid = google
    assert sso(app, client, upstream, cid, "g-alice", GOOGLE).status_code == 303
    with app.app_context():
        acct = db.session.query(Account).filter_by(email="alice@acme.example").one()
        acct.phone_number = "+49 30 1234"  # set by the employee, not by Google
        member = db.session.query(Access).filter_by(account_id=acct.id).one()
        member.roles = [*member.roles, "admin"]  # given by hand
        db.session.commit()
    changed = {**GOOGLE, "department": "Finance", "groups": ["Approvers"],
               "email": "alice.new@acme.example"}
    assert sso(app, client, upstream, cid, "g-alice", changed).status_code == 303
    with app.app_context():
        acct = db.session.query(Account).one()
        (member,) = accesses.of_account(acct.id)
        assert (member.personnel_number, member.department) == ("P-100", "Finance")
        assert acct.phone_number == "+49 30 1234"
        assert acct.email == "alice@acme.example"  # an upstream never changes the address
        assert sorted(member.roles) == ["admin", "approver", "employee"]
        assert db.session.query(Account).count() == 1


def _link_code(app: Flask, to: str) -> str:
    from idp.mail.outbox import open_body

    with app.app_context():
        rows = db.session.query(OutboxMessage).order_by(OutboxMessage.created_at).all()
        mine = [r for r in rows if (r.payload or {}).get("to") == to]
        assert mine, "no code was sent to the existing account"
        body = open_body(mine[-1]) or {}
    import re

    match = re.search(r"\b(\d{6})\b", body.get("text", ""))
    assert match is not None
    return match.group(1)


def test_existing_email_is_linked_only_after_an_email_code(
    app: Flask, client: FlaskClient, upstream: Upstream, google: tuple[str, str]
) -> None:
    _, cid = google
    with app.app_context():
        db.session.add(Account(email="alice@acme.example", email_verified=True,
                               given_name="Alice", family_name="Existing"))
        db.session.commit()
    resp = sso(app, client, upstream, cid, "g-alice", GOOGLE)
    assert resp.status_code == 200  # the code page, no session, nothing linked
    assert client.get_cookie("ug_session") is None
    with app.app_context():
        assert db.session.query(UpstreamIdentity).count() == 0
    page = resp.get_data(as_text=True)
    action = page.split('action="', 1)[1].split('"', 1)[0]
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    wrong = client.post(action, data={"code": "000000", "csrf_token": csrf})
    if _link_code(app, "alice@acme.example") != "000000":
        assert wrong.status_code == 400
    with app.app_context():
        assert db.session.query(UpstreamIdentity).count() == 0
    ok = client.post(action, data={"code": _link_code(app, "alice@acme.example"),
                                   "csrf_token": csrf})
    assert ok.status_code == 303
    assert client.get_cookie("ug_session") is not None
    with app.app_context():
        acct = db.session.query(Account).filter_by(email="alice@acme.example").one()
        link = db.session.query(UpstreamIdentity).one()
        assert link.account_id == acct.id
        assert db.session.query(Account).count() == 1
    again = client.post(action, data={"code": "123456", "csrf_token": csrf})
    assert again.status_code == 400  # one proof links once


def test_unverified_entra_email_neither_links_nor_creates(
    app: Flask, client: FlaskClient, upstream: Upstream
) -> None:
    unit_id = make_unit(app)
    cid = make_connector(app, upstream, unit_id, "microsoft", {
        "authority": upstream.microsoft_authority, "tenants": [TENANT_A]})
    with app.app_context():
        db.session.add(Account(email="victim@acme.example", email_verified=True))
        db.session.commit()
    claims = {"tid": TENANT_A, "oid": "oid-9", "email": "victim@acme.example"}  # no xms_edov
    resp = sso(app, client, upstream, cid, "pairwise", claims)
    assert resp.status_code == 403
    with app.app_context():
        assert db.session.query(UpstreamIdentity).count() == 0
        assert db.session.query(OutboxMessage).count() == 0
    verified = {**claims, "oid": "oid-10", "email": "new@acme.example", "xms_edov": True}
    assert sso(app, client, upstream, cid, "pairwise-2", verified).status_code == 303
    with app.app_context():
        link = db.session.query(UpstreamIdentity).one()
        assert link.subject == f"{TENANT_A}/oid-10"


def test_address_outside_the_units_verified_domains_is_not_created(
    app: Flask, client: FlaskClient, upstream: Upstream
) -> None:
    unit_id = make_unit(app, "acme", domains=("acme.example",))
    make_unit(app, "globex", domains=("globex.example",))
    cid = make_connector(app, upstream, unit_id, "okta", {"issuer": upstream.okta_custom_issuer})
    resp = sso(app, client, upstream, cid, "okta-1", {"email": "ceo@globex.example",
                                                      "email_verified": True})
    assert resp.status_code == 403
    with app.app_context():
        assert db.session.query(Account).count() == 0


def test_google_hd_must_be_verified_for_the_unit(
    app: Flask, client: FlaskClient, upstream: Upstream
) -> None:
    unit_id = make_unit(app, "acme", domains=("other.example",))
    cid = make_connector(app, upstream, unit_id, "google", {
        "issuer": upstream.google_issuer, "hosted_domains": ["acme.example"]})
    assert sso(app, client, upstream, cid, "g-1", GOOGLE).status_code == 403


def test_callback_state_is_one_use_and_browser_bound(
    app: Flask, client: FlaskClient, upstream: Upstream, google: tuple[str, str]
) -> None:
    _, cid = google
    ix_id = begin(app, client)
    start = client.get(f"/federation/{cid}/start?ix={ix_id}")
    upstream.login_as("g-alice", GOOGLE)
    back = urlsplit(upstream.authorize(start.headers["Location"]))
    stranger = app.test_client()
    assert stranger.get(f"{back.path}?{back.query}").status_code == 400  # other browser
    assert client.get(f"{back.path}?{back.query}").status_code == 400  # state was taken
    forged = back.query.replace("state=", "state=x")
    assert client.get(f"{back.path}?{forged}").status_code == 400
    assert client.get(f"/federation/{cid}/callback").status_code == 400


def test_state_of_another_connector_refused(
    app: Flask, client: FlaskClient, upstream: Upstream, google: tuple[str, str]
) -> None:
    unit_id, cid = google
    other = make_connector(app, upstream, unit_id, "okta", {"issuer": upstream.okta_org_issuer})
    ix_id = begin(app, client)
    start = client.get(f"/federation/{cid}/start?ix={ix_id}")
    upstream.login_as("g-alice", GOOGLE)
    back = urlsplit(upstream.authorize(start.headers["Location"]))
    assert client.get(f"/federation/{other}/callback?{back.query}").status_code == 400


def test_upstream_refusal_is_an_error_page_not_a_crash(
    app: Flask, client: FlaskClient, upstream: Upstream, google: tuple[str, str]
) -> None:
    _, cid = google
    upstream.tamper(alg="none")
    resp = sso(app, client, upstream, cid, "g-alice", GOOGLE)
    assert resp.status_code == 400
    assert "alg_not_allowed" in resp.get_data(as_text=True)
    assert client.get_cookie("ug_session") is None


# -- a provider in its default configuration: claims only from UserInfo --------------

PLAIN = {"email": "pat@acme.example", "email_verified": True, "given_name": "Pat",
         "family_name": "Plain"}


@pytest.fixture
def plain(app: Flask, upstream: Upstream) -> tuple[str, str]:
    """A generic OIDC connector to node-oidc-provider in its default claims setup: the
    ID token of the code flow has no email and no names (they come from UserInfo)."""
    unit_id = make_unit(app)
    cid = make_connector(app, upstream, unit_id, "oidc", {"issuer": upstream.plain_issuer})
    return unit_id, cid


def test_sign_in_with_email_and_names_only_in_userinfo(
    app: Flask, client: FlaskClient, upstream: Upstream, plain: tuple[str, str]
) -> None:
    unit_id, cid = plain
    resp = sso(app, client, upstream, cid, "p-pat", PLAIN)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert client.get_cookie("ug_session") is not None
    with app.app_context():
        acct = db.session.query(Account).filter_by(email="pat@acme.example").one()
        assert (acct.given_name, acct.family_name) == ("Pat", "Plain")
        (member,) = accesses.of_account(acct.id)
        assert member.unit_id == unit_id
        link = db.session.query(UpstreamIdentity).filter_by(account_id=acct.id).one()
        assert (link.issuer, link.subject) == (upstream.plain_issuer, "p-pat")


def test_userinfo_for_another_subject_refuses_the_sign_in_clearly(
    app: Flask, client: FlaskClient, upstream: Upstream, plain: tuple[str, str]
) -> None:
    _, cid = plain
    ix_id = begin(app, client)
    resp = client.get(f"/federation/{cid}/start?ix={ix_id}")
    upstream.login_as("p-pat", PLAIN)
    back = urlsplit(upstream.authorize(resp.headers["Location"]))
    upstream.tamper_userinfo(sub="p-mallory")
    resp = client.get(f"{back.path}?{back.query}")
    assert resp.status_code == 400
    body = resp.get_data(as_text=True)
    assert "described a different person" in body and "userinfo_subject_mismatch" in body
    assert client.get_cookie("ug_session") is None
    with app.app_context():
        assert db.session.query(Account).filter_by(email="pat@acme.example").count() == 0


def test_unit_with_fresh_code_policy_asks_its_upstream_for_a_new_sign_in(
    app: Flask, client: FlaskClient, upstream: Upstream, google: tuple[str, str]
) -> None:
    from urllib.parse import parse_qs

    from idp.factors import fresh_code

    unit_id, cid = google
    resp = client.get(f"/federation/{cid}/start?ix={begin(app, client)}")
    assert "prompt" not in parse_qs(urlsplit(resp.headers["Location"]).query)
    with app.app_context():
        fresh_code.set_unit_policy(unit_id, True, "test")
    resp = client.get(f"/federation/{cid}/start?ix={begin(app, client)}")
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert query["prompt"] == ["login"] and query["max_age"] == ["0"]
    upstream.login_as("g-alice", GOOGLE)
    back = urlsplit(upstream.authorize(resp.headers["Location"]))
    assert client.get(f"{back.path}?{back.query}").status_code == 303
