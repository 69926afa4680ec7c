"""Issue 3 end to end at a merchant: the real ``/authorize``, the real login pages,
codes read from a real SMTP server (aiosmtpd), the real upstream OpenID provider
(node-oidc-provider shaped like Google, Entra and Okta), and the token and userinfo
answers the merchant gets, whose ``org`` claims must name the right unit and role.

* e-mail code sign-ins join the unit of a verified ``auto_join`` domain (new wallet
  and existing account, sub-unit by attribute); consumer and unverified domains
  join nothing;
* identifier-first login: a ``require_sso`` domain (typed or ``login_hint``) goes to
  the company's IdP and never gets a code, break-glass addresses do, no usable
  connector is a clear refusal;
* a federated sign-in per preset ends with a code at the merchant's redirect_uri;
* a person in two units chooses one and the ``org`` claims carry the choice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from idp.accounts import accesses
from idp.domains import registry as domains
from idp.domains import rules as domain_rules
from idp.federation.registry import callback_url, secret_context
from idp.mail.outbox import courier
from idp.services import services
from idp.store import connectors_repo
from idp.store.db import db
from idp.store.models import (
    Access,
    Account,
    AuditEvent,
    Connector,
    OutboxMessage,
    UnitProfileField,
)
from idp.store.unit_of_work import atomic
from idp.units import registry as units
from tests.support import oidc
from tests.support.login import csrf_token
from tests.support.smtp import SmtpSink, code_in
from tests.support.upstream import Upstream

TENANT_A = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
SCOPE = "openid profile email org"


@pytest.fixture
def settings_overrides(smtp_server: SmtpSink) -> dict[str, object]:
    return {"smtp_url": smtp_server.url}


@pytest.fixture
def web(app: Flask, client: FlaskClient) -> Iterator[FlaskClient]:
    yield client
    courier(app).drain()


@dataclass
class Company:
    unit_id: str
    sales_id: str


@pytest.fixture
def acme(app: Flask) -> Company:
    """ACME (with a Sales sub-unit) owning the manually verified acme.example, whose
    rules auto-join e-mail code sign-ins as ``buyers`` (Sales for cost centre CC-S)."""
    with app.app_context():
        unit = units.create("ACME GmbH", slug="acme", permission_groups=["buyers"])
        sales = units.create("ACME Sales", parent="acme", slug="acme-sales")
        domains.claim("acme", "acme.example")
        domains.verify_manually("acme.example", "registrar letter", "test")
        domain_rules.set_rules("acme.example", auto_join=True, default_role="buyers",
                               subunit_attribute="cost_centre",
                               subunit_map={"CC-S": "acme-sales"})
        return Company(unit.id, sales.id)


def add_connector(app: Flask, upstream: Upstream, unit_id: str, kind: str,
                  settings: dict[str, Any]) -> str:
    """A connector of ``unit_id`` registered upstream with its real callback URL."""
    with app.app_context():
        cid = connectors_repo.new_connector_id()
        if kind == "microsoft":
            client_id, secret = upstream.entra_app(callback_url(cid))
        else:
            client_id, secret = upstream.register_client(settings["issuer"], callback_url(cid))
        sealed = services().sealer.seal(secret.encode(), secret_context(cid))
        with atomic():
            connectors_repo.create(unit_id, kind, f"ACME {kind}",
                                   {**settings, "client_id": client_id}, sealed, connector_id=cid)
        return cid


@dataclass
class Person:
    """How the test employee answers the login pages."""

    email: str
    smtp: SmtpSink
    upstream: Upstream | None = None
    unit_id: str | None = None  # the unit to choose when asked
    seen: list[str] | None = None  # the login pages shown, in order
    profile_extra: dict[str, str] | None = None  # unit fields to fill in the wallet form


def left_the_idp(resp: TestResponse) -> bool:
    host = urlsplit(resp.headers["Location"]).netloc
    return host not in ("", "localhost")


def walk(web: FlaskClient, resp: TestResponse, who: Person) -> TestResponse:
    """Follow the browser from ``resp`` through the IdP's pages (and the upstream IdP)
    answering as ``who``, until a response that is not a 303 inside the IdP: the 303
    to the merchant, or a page such as a refusal."""
    who.seen = []
    courier(web.application).drain()  # earlier mail has arrived: only new codes count
    after = len(who.smtp.messages)
    for _ in range(25):
        if resp.status_code != 303:
            return resp
        if left_the_idp(resp):
            location = resp.headers["Location"]
            if who.upstream is None or urlsplit(location).port not in who.upstream.ports.values():
                return resp  # at the merchant
            back = urlsplit(who.upstream.authorize(location))
            who.seen.append("upstream")
            resp = web.get(f"{back.path}?{back.query}")
            continue
        path = urlsplit(resp.headers["Location"]).path
        query = urlsplit(resp.headers["Location"]).query
        if not path.startswith("/interaction/"):
            resp = web.get(f"{path}?{query}" if query else path)
            continue
        page = web.get(path)
        if page.status_code == 303:
            resp = page
            continue
        assert page.status_code == 200, (path, page.status_code)
        html = page.get_data(as_text=True)
        step = path.rsplit("/", 1)[-1] if path.count("/") > 2 else "email"
        who.seen.append(step)
        data: dict[str, str] = {"csrf_token": csrf_token(html)}
        action = path
        if step == "email":
            data["email"] = who.email
            action = path + "/email"
        elif step == "code":
            data["code"] = code_in(who.smtp.last_to(who.email, after=after))
        elif step == "profile":
            data.update(given_name="Alice", family_name="Buyer")
            data.update(who.profile_extra or {})
        elif step == "unit":
            assert who.unit_id is not None, "asked to choose a unit"
            assert f'value="{who.unit_id}"' in html
            data["unit_id"] = who.unit_id
        elif step == "consent":
            data["decision"] = "allow"
        else:
            raise AssertionError(f"unexpected login page {path}")
        resp = web.post(action, data=data)
    raise AssertionError("the browser never left the IdP")


@dataclass
class Answer:
    id_token: dict[str, Any]
    userinfo: dict[str, Any]


def authorize(web: FlaskClient, rp: oidc.RP, scope: str = SCOPE,
              **extra: str) -> tuple[TestResponse, dict[str, Any]]:
    verifier, challenge = oidc.pkce()
    params = oidc.auth_params(rp, scope=scope, code_challenge=challenge,
                              code_challenge_method="S256", **extra)
    params["verifier"] = verifier
    sent = {k: v for k, v in params.items() if k != "verifier"}
    return web.get("/authorize", query_string=sent), params


def redeem(web: FlaskClient, rp: oidc.RP, at_merchant: TestResponse,
           params: dict[str, Any]) -> Answer:
    """The merchant's side: the code at its redirect_uri, exchanged for tokens; the
    verified ID token claims and the userinfo answer."""
    location = at_merchant.headers["Location"]
    assert location.startswith(rp.redirect_uri + "?"), location
    q = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert q["state"] == params["state"] and q["iss"] == oidc.ISSUER
    si = oidc.SignIn(q["code"], params["state"], params["nonce"], params["verifier"])
    tokens = oidc.exchange(web, rp, si)
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    body = tokens.get_json()
    decoded = oidc.verify_jwt(web, body["id_token"]).claims
    assert decoded["aud"] == rp.client_id and decoded["nonce"] == params["nonce"]
    info = oidc.userinfo(web, body["access_token"])
    assert info.status_code == 200
    return Answer(decoded, info.get_json())


def org(claims: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(org_id, org_name, roles sorted) of an ID token or userinfo answer."""
    roles = claims.get("roles")
    return claims.get("org_id"), claims.get("org_name"), sorted(roles) if roles else roles


def outbox_to(app: Flask, email: str) -> int:
    with app.app_context():
        return sum(1 for m in db.session.query(OutboxMessage).all()
                   if (m.payload or {}).get("to") == email)


# -- 1. e-mail code sign-ins join by domain ------------------------------------------


def test_new_wallet_joins_the_domain_unit_and_the_merchant_sees_it(
    app: Flask, web: FlaskClient, smtp_server: SmtpSink, acme: Company
) -> None:
    rp = oidc.register(app, scope=SCOPE)
    first, params = authorize(web, rp, login_hint="Alice@ACME.example")
    who = Person("alice@acme.example", smtp_server)
    answer = redeem(web, rp, walk(web, first, who), params)
    assert who.seen == ["email", "code", "profile", "consent"]
    expected = (acme.unit_id, "ACME GmbH", ["buyers"])
    assert org(answer.id_token) == expected
    assert org(answer.userinfo) == expected
    assert answer.userinfo["email"] == "alice@acme.example"
    with app.app_context():
        account = db.session.query(Account).filter_by(email="alice@acme.example").one()
        [member] = db.session.query(Access).filter_by(account_id=account.id).all()
        assert (member.unit_id, member.roles) == (acme.unit_id, ["buyers"])
        joined = db.session.query(AuditEvent).filter_by(action="membership.auto_join").one()
        assert joined.target == account.id


def test_first_wallet_form_already_asks_the_joined_units_required_fields(
    app: Flask, web: FlaskClient, smtp_server: SmtpSink, acme: Company
) -> None:
    """A new employee of an auto-join domain fills the unit's fields in the one
    wallet form of the first sign-in, not in a second form right after it."""
    with app.app_context():
        db.session.add(UnitProfileField(unit_id=acme.unit_id, name="plant", label="Plant",
                                        required=True))
        db.session.commit()
    rp = oidc.register(app, scope=SCOPE)
    first, params = authorize(web, rp)
    who = Person("erin@acme.example", smtp_server, profile_extra={"extra__plant": "Berlin"})
    redeem(web, rp, walk(web, first, who), params)
    assert who.seen == ["email", "code", "profile", "consent"]
    with app.app_context():
        account = db.session.query(Account).filter_by(email="erin@acme.example").one()
        (joined,) = accesses.of_account(account.id)  # kept on the access it joined
        assert joined.unit_id == acme.unit_id and joined.extra == {"plant": "Berlin"}


def test_existing_account_proves_its_address_and_joins_the_domains_unit(
    app: Flask, web: FlaskClient, smtp_server: SmtpSink, acme: Company
) -> None:
    """An account of no unit has no employer facts (they are per access), so the
    sub-unit rule finds no cost centre: it joins the domain's unit itself."""
    account_id = oidc.make_account(app, "sam@acme.example", email_verified=False,
                                   given_name="Sam", family_name="Seller")
    rp = oidc.register(app, scope=SCOPE)
    first, params = authorize(web, rp)
    who = Person("sam@acme.example", smtp_server)
    answer = redeem(web, rp, walk(web, first, who), params)
    assert who.seen == ["email", "code", "consent"]
    assert org(answer.id_token) == (acme.unit_id, "ACME GmbH", ["buyers"])
    assert answer.id_token["sub"] == account_id
    assert answer.userinfo["email_verified"] is True  # the code proved the address
    # The next sign-in changes nothing: one membership, never a duplicate.
    second, params2 = authorize(web, rp, prompt="login")
    answer2 = redeem(web, rp, walk(web, second, who), params2)
    assert org(answer2.userinfo) == (acme.unit_id, "ACME GmbH", ["buyers"])
    with app.app_context():
        assert db.session.query(Access).filter_by(account_id=account_id).count() == 1


@pytest.mark.parametrize("email", ["carol@gmail.com", "dave@pending.example"])
def test_consumer_and_unverified_domains_join_nothing(
    app: Flask, web: FlaskClient, smtp_server: SmtpSink, acme: Company, email: str
) -> None:
    with app.app_context():
        domains.claim("acme", "pending.example")  # claimed, never proven
        domain_rules.set_rules("pending.example", auto_join=True, default_role="buyers")
    rp = oidc.register(app, scope=SCOPE)
    first, params = authorize(web, rp, login_hint=email)
    answer = redeem(web, rp, walk(web, first, Person(email, smtp_server)), params)
    assert org(answer.id_token) == (None, None, None)
    assert "org_id" not in answer.userinfo and answer.userinfo["email"] == email
    with app.app_context():
        assert db.session.query(Access).count() == 0


# -- 2. identifier-first login ---------------------------------------------------------


@pytest.fixture
def sso_required(app: Flask, upstream: Upstream, acme: Company) -> str:
    """acme.example requires its Google Workspace; root@acme.example is break-glass."""
    cid = add_connector(app, upstream, acme.unit_id, "google", {
        "issuer": upstream.google_issuer, "hosted_domains": ["acme.example"],
        "role_map": {"Purchasing": "buyers"}, "default_roles": ["employee"]})
    with app.app_context():
        domain_rules.set_rules("acme.example", require_sso=True, connector=cid,
                               break_glass=["root@acme.example"])
    return cid


GOOGLE_ALICE = {"email": "alice@acme.example", "email_verified": True, "hd": "acme.example",
                "given_name": "Alice", "family_name": "Buyer", "groups": ["Purchasing"]}


def test_login_hint_of_a_require_sso_domain_goes_straight_upstream(
    app: Flask, web: FlaskClient, smtp_server: SmtpSink, upstream: Upstream,
    acme: Company, sso_required: str
) -> None:
    rp = oidc.register(app, scope=SCOPE)
    first, params = authorize(web, rp, login_hint="alice@acme.example")
    upstream.login_as("g-alice-hint", GOOGLE_ALICE)
    who = Person("alice@acme.example", smtp_server, upstream=upstream)
    answer = redeem(web, rp, walk(web, first, who), params)
    assert who.seen == ["upstream", "consent"]  # no e-mail page, no code
    assert org(answer.id_token) == (acme.unit_id, "ACME GmbH", ["buyers", "employee"])
    assert "fed" in answer.id_token["amr"]
    assert outbox_to(app, "alice@acme.example") == 0


def test_typed_address_of_a_require_sso_domain_never_gets_a_code(
    app: Flask, web: FlaskClient, smtp_server: SmtpSink, upstream: Upstream,
    acme: Company, sso_required: str
) -> None:
    rp = oidc.register(app, scope=SCOPE)
    first, _ = authorize(web, rp)
    login = urlsplit(first.headers["Location"]).path
    page = web.get(login)
    assert page.status_code == 200  # no hint: the e-mail page
    csrf = csrf_token(page.get_data(as_text=True))
    sent = web.post(login + "/email", data={"csrf_token": csrf, "email": "bob@acme.example"})
    assert sent.status_code == 303 and left_the_idp(sent)
    assert urlsplit(sent.headers["Location"]).port == upstream.ports["google"]
    # Driving the code pages by hand gets no code either: they all go upstream.
    code_page = web.get(login + "/code")
    assert code_page.status_code == 303 and left_the_idp(code_page)
    resent = web.post(login + "/resend", data={"csrf_token": csrf})
    assert resent.status_code == 303 and left_the_idp(resent)
    guessed = web.post(login + "/code", data={"csrf_token": csrf, "code": "123456"})
    assert guessed.status_code == 303 and left_the_idp(guessed)
    assert web.get_cookie("ug_session") is None
    assert outbox_to(app, "bob@acme.example") == 0


def test_break_glass_address_signs_in_with_an_email_code(
    app: Flask, web: FlaskClient, smtp_server: SmtpSink, upstream: Upstream,
    acme: Company, sso_required: str
) -> None:
    rp = oidc.register(app, scope=SCOPE)
    first, params = authorize(web, rp, login_hint="root@acme.example")
    who = Person("root@acme.example", smtp_server, upstream=upstream)
    answer = redeem(web, rp, walk(web, first, who), params)
    assert who.seen == ["email", "code", "profile", "consent"]
    assert answer.id_token["amr"] == ["otp"]
    assert org(answer.userinfo) == (acme.unit_id, "ACME GmbH", ["buyers"])


def test_require_sso_without_a_usable_connector_is_a_clear_refusal(
    app: Flask, web: FlaskClient, smtp_server: SmtpSink, upstream: Upstream,
    acme: Company, sso_required: str
) -> None:
    with app.app_context():
        db.session.get(Connector, sso_required).enabled = False
        db.session.commit()
    rp = oidc.register(app, scope=SCOPE)
    first, _ = authorize(web, rp, login_hint="bob@acme.example")
    login = urlsplit(first.headers["Location"]).path
    page = web.get(login)
    assert page.status_code == 200  # the hint is not followed to a dead end
    refused = web.post(login + "/email", data={"csrf_token": csrf_token(page.get_data(
        as_text=True)), "email": "bob@acme.example"})
    assert refused.status_code == 403
    text = refused.get_data(as_text=True)
    assert "Your company requires its own sign-in" in text and "administrator" in text
    assert "Traceback" not in text
    assert outbox_to(app, "bob@acme.example") == 0
    assert web.get_cookie("ug_session") is None


# -- 3. federated sign-in per preset -------------------------------------------------


PRESETS = {
    "google": (lambda up: {"issuer": up.google_issuer, "hosted_domains": ["acme.example"]},
               {"email": "erin@acme.example", "email_verified": True, "hd": "acme.example",
                "given_name": "Erin", "family_name": "Google", "groups": ["Purchasing"]}),
    "microsoft": (lambda up: {"authority": up.microsoft_authority, "tenants": [TENANT_A]},
                  {"tid": TENANT_A, "oid": "oid-erin", "email": "erin@acme.example",
                   "xms_edov": True, "given_name": "Erin", "family_name": "Entra",
                   "groups": ["Purchasing"]}),
    "okta": (lambda up: {"issuer": up.okta_custom_issuer},
             {"email": "erin@acme.example", "email_verified": True, "given_name": "Erin",
              "family_name": "Okta", "groups": ["Purchasing"]}),
}


@pytest.mark.parametrize("kind", sorted(PRESETS))
def test_federated_sign_in_at_a_merchant_creates_the_account_in_the_unit(
    app: Flask, web: FlaskClient, smtp_server: SmtpSink, upstream: Upstream,
    acme: Company, kind: str
) -> None:
    settings, claims = PRESETS[kind]
    cid = add_connector(app, upstream, acme.unit_id, kind, {
        **settings(upstream), "role_map": {"Purchasing": "buyers"}})
    with app.app_context():
        domain_rules.set_rules("acme.example", require_sso=True, connector=cid)
    rp = oidc.register(app, scope=SCOPE)
    first, params = authorize(web, rp, login_hint="erin@acme.example")
    upstream.login_as(f"{kind}-erin", claims)
    who = Person("erin@acme.example", smtp_server, upstream=upstream)
    answer = redeem(web, rp, walk(web, first, who), params)
    assert who.seen == ["upstream", "consent"]
    assert org(answer.id_token) == (acme.unit_id, "ACME GmbH", ["buyers"])
    assert answer.userinfo["family_name"] == claims["family_name"]
    with app.app_context():
        account = db.session.query(Account).filter_by(email="erin@acme.example").one()
        assert answer.id_token["sub"] == account.id
    assert outbox_to(app, "erin@acme.example") == 0


# -- 4. two units: the employee chooses ----------------------------------------------


def test_a_person_in_two_units_chooses_and_the_claims_carry_the_choice(
    app: Flask, web: FlaskClient, smtp_server: SmtpSink, acme: Company
) -> None:
    account_id = oidc.make_account(app, "kim@consult.example", given_name="Kim",
                                   family_name="Consultant")
    with app.app_context():
        globex = units.create("Globex AG", slug="globex", permission_groups=["approvers"])
        with atomic():  # a cost centre in each unit: each its own employer's fact
            for unit_id, roles, centre in ((acme.unit_id, ["buyers"], "CC-ACME"),
                                           (globex.id, ["approvers"], "CC-GLOBEX")):
                row = accesses.create(account_id, unit_id, roles, "test", event=None)
                accesses.set_facts(row, {"cost_centre": centre}, "scim")
        globex_id = globex.id
    scope = SCOPE + " wallet"
    rp = oidc.register(app, scope=scope)
    first, params = authorize(web, rp, scope)
    who = Person("kim@consult.example", smtp_server, unit_id=globex_id)
    answer = redeem(web, rp, walk(web, first, who), params)
    assert who.seen == ["email", "code", "unit", "consent"]
    assert org(answer.id_token) == (globex_id, "Globex AG", ["approvers"])
    assert org(answer.userinfo) == (globex_id, "Globex AG", ["approvers"])
    assert answer.id_token["cost_centre"] == answer.userinfo["cost_centre"] == "CC-GLOBEX"
    # With the live session the merchant gets the same unit again, without asking.
    again, params2 = authorize(web, rp, scope)
    assert again.status_code == 303 and left_the_idp(again)
    assert org(redeem(web, rp, again, params2).id_token) == (globex_id, "Globex AG",
                                                             ["approvers"])
    # Asked to sign in again, the employee may choose the other unit.
    other, params3 = authorize(web, rp, scope, prompt="login")
    who.unit_id = acme.unit_id
    answer3 = redeem(web, rp, walk(web, other, who), params3)
    assert "unit" in who.seen
    assert org(answer3.userinfo) == (acme.unit_id, "ACME GmbH", ["buyers"])
    assert answer3.id_token["cost_centre"] == answer3.userinfo["cost_centre"] == "CC-ACME"
    with app.app_context():  # each sign-in is the last one through its access
        assert accesses.find(account_id, acme.unit_id).last_signin_at is not None  # type: ignore[union-attr]
        assert accesses.find(account_id, globex_id).last_signin_at is not None  # type: ignore[union-attr]


def test_a_suspended_access_leaves_the_other_unit_working(
    app: Flask, web: FlaskClient, smtp_server: SmtpSink, acme: Company
) -> None:
    """Globex suspends Kim's access: Kim signs in for ACME without being asked for a
    unit, gets ACME's claims only, and holds no right in Globex; ACME's unchanged."""
    from idp.rights import Actor as RightsActor
    from idp.rights import may

    account_id = oidc.make_account(app, "kim@consult.example", given_name="Kim",
                                   family_name="Consultant")
    with app.app_context():
        globex = units.create("Globex AG", slug="globex")
        with atomic():
            for unit_id, roles in ((acme.unit_id, ["main_user"]), (globex.id, ["main_user"])):
                accesses.create(account_id, unit_id, roles, "test", event=None)
        globex_id = globex.id
        with atomic():
            assert accesses.suspend(account_id, globex_id, "test")
        who_rights = RightsActor.account(account_id)
        assert not may(who_rights, "users.read", globex_id)
        assert may(who_rights, "users.read", acme.unit_id)
    rp = oidc.register(app, scope=SCOPE)
    first, params = authorize(web, rp)
    who = Person("kim@consult.example", smtp_server, unit_id=globex_id)
    answer = redeem(web, rp, walk(web, first, who), params)
    assert "unit" not in who.seen  # one granting access: nothing to choose
    assert org(answer.id_token) == (acme.unit_id, "ACME GmbH", ["main_user"])
    with app.app_context():
        with atomic():
            assert accesses.reactivate(account_id, globex_id, "test")
        assert may(RightsActor.account(account_id), "users.read", globex_id)
