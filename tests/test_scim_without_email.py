"""People without a mailbox (issue 18 item 2): RFC 7643 requires only ``userName``.

An HR system provisions such a user like anyone: the account has no address, keeps
its access, roles and facts, is found, patched and deleted through SCIM, and listed
by the administration API with ``email`` null. Nobody can sign in to it by e-mail
code until HR adds an address (in the unit's own domain, unverified until the first
code proves it); an address another account holds is a ``uniqueness`` conflict, never
a merge. A linked upstream identity signs it in by its subject."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from lxml import etree

from idp.accounts import lifecycle
from idp.audit import Actor
from idp.saml.constants import (
    NAMEID_PERSISTENT,
    STATUS_INVALID_NAMEID_POLICY,
    STATUS_RESPONDER,
)
from idp.store.db import db
from idp.store.models import Account, AuditEvent
from idp.store.models import Session as SessionRow
from idp.store.upstream_identities_repo import UpstreamKey
from tests import test_federation_flow as federation
from tests.support import oidc, saml_flow
from tests.support.api import api_for
from tests.support.login import sign_in_to_dashboard
from tests.support.saml_sp import posted_form, response_xml
from tests.support.scim import (
    ENTERPRISE,
    USER,
    Scim,
    access,
    account,
    body,
    create_token,
    error,
    make_unit,
)
from tests.support.upstream import Upstream

# What an HR system sends for a warehouse worker without a mailbox (Okta style:
# no ``emails`` at all; the userName is a personnel number, not an address).
NO_MAIL: dict[str, Any] = {
    "schemas": [USER, ENTERPRISE],
    "userName": "P-4711",
    "externalId": "hr-4711",
    "name": {"givenName": "Walt", "familyName": "Worker"},
    "active": True,
    ENTERPRISE: {"employeeNumber": "4711", "costCenter": "CC-9", "department": "Warehouse"},
}


@pytest.fixture
def hr(app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> Scim:
    make_unit(app, "acme", verified=("acme.example",))
    return Scim(client, create_token(runner, "acme"))


def unit_id(app: Flask) -> str:
    with app.app_context():
        from idp.store.models import Unit

        unit = db.session.query(Unit).filter_by(slug="acme").one()
        return unit.id


def test_a_user_without_email_is_created_with_its_access(app: Flask, hr: Scim) -> None:
    doc = body(hr.post("/Users", NO_MAIL), 201)
    assert "emails" not in doc
    assert doc["userName"] == "P-4711" and doc["active"] is True
    acct = account(app, doc["id"])
    assert acct.email is None and acct.given_name == "Walt"
    member = access(app, doc["id"], unit_id(app))
    assert member is not None and member.status == "active" and member.roles == ["employee"]
    assert (member.personnel_number, member.cost_centre, member.department) == (
        "4711", "CC-9", "Warehouse")
    with app.app_context():
        event = db.session.query(AuditEvent).filter_by(
            action="account.provisioned", target=doc["id"]).one()
        assert event.details["without_email"] is True
    # a second one without an address is no clash (many NULLs in the unique column)
    other = body(hr.post("/Users", {**NO_MAIL, "userName": "P-4712", "externalId": "hr-4712"}),
                 201)
    assert account(app, other["id"]).email is None
    # the userName stays unique in the unit
    error(hr.post("/Users", NO_MAIL), 409, "uniqueness")


def test_found_patched_and_deleted_like_anyone(app: Flask, hr: Scim) -> None:
    uid = body(hr.post("/Users", NO_MAIL), 201)["id"]
    for query in ('userName eq "p-4711"', 'externalId eq "hr-4711"'):
        found = body(hr.get("/Users", query_string={"filter": query}), 200)
        assert [r["id"] for r in found["Resources"]] == [uid], query
    assert body(hr.get(f"/Users/{uid}"), 200)["name"]["familyName"] == "Worker"
    doc = body(hr.patch(f"/Users/{uid}", {"op": "replace", "path": "title", "value": "Lead"},
                        {"op": "replace", "path": "active", "value": False}), 200)
    assert doc["title"] == "Lead" and doc["active"] is False and "emails" not in doc
    doc = body(hr.patch(f"/Users/{uid}", {"op": "replace", "path": "active", "value": True}),
               200)
    assert doc["active"] is True
    assert hr.delete(f"/Users/{uid}").status_code == 204
    error(hr.get(f"/Users/{uid}"), 404)
    assert account(app, uid).status == "deleted"


def test_the_admin_api_lists_them_with_email_null(
    app: Flask, client: FlaskClient, hr: Scim
) -> None:
    body(hr.post("/Users", {**NO_MAIL, "emails": [{"value": "zed@acme.example"}],
                            "userName": "zed"}), 201)
    for n in range(3):
        body(hr.post("/Users", {**NO_MAIL, "userName": f"P-{n}", "externalId": f"x{n}"}), 201)
    body(hr.post("/Users", {**NO_MAIL, "emails": [{"value": "amy@acme.example"}],
                            "userName": "amy"}), 201)
    api = api_for(app, client, "acme")
    path = f"/units/{unit_id(app)}/accesses"
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:  # pages of two: the keyset crosses into the accounts without an address
        query: dict[str, Any] = {"limit": 2, "with_total": "true"}
        if cursor:
            query["cursor"] = cursor
        resp = api.get(path, query_string=query)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        page = resp.get_json()
        assert page["total"] == 5
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    emails = [i["email"] for i in seen]
    assert emails == ["amy@acme.example", "zed@acme.example", None, None, None]
    assert len({i["id"] for i in seen}) == 5
    # so does the operator's authorisations view of the customer
    operator = api_for(app, client)
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        resp = operator.get(f"/customers/{unit_id(app)}/authorisations", query_string=query)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        seen += resp.get_json()["accesses"]
        cursor = resp.get_json()["next_cursor"]
        if cursor is None:
            break
    assert [a["email"] for a in seen] == emails and len({a["id"] for a in seen}) == 5
    # the type-ahead finds them by name, after the people with an address
    resp = api.get(f"/units/{unit_id(app)}/people/search", query_string={"q": "Wal"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert [p["email"] for p in resp.get_json()["items"]] == [
        "amy@acme.example", "zed@acme.example", None, None, None]


def test_an_address_added_later_signs_in_by_code(
    app: Flask, client: FlaskClient, hr: Scim
) -> None:
    uid = body(hr.post("/Users", NO_MAIL), 201)["id"]
    # an address outside the unit's own domains is refused (a bound record's rule)
    error(hr.patch(f"/Users/{uid}", {"op": "add", "path": "emails",
                                     "value": [{"value": "walt@gmail.example"}]}), 400,
          "invalidValue")
    doc = body(hr.patch(f"/Users/{uid}", {"op": "add", "path": "emails",
                                          "value": [{"value": "Walt@ACME.example",
                                                     "type": "work", "primary": True}]}), 200)
    assert doc["emails"] == [{"value": "walt@acme.example", "type": "work", "primary": True}]
    acct = account(app, uid)
    assert acct.email == "walt@acme.example" and acct.email_verified is False
    page = sign_in_to_dashboard(app, app.test_client(), "walt@acme.example")
    assert "walt@acme.example" in page.get_data(as_text=True)
    assert account(app, uid).email_verified is True
    # the address cannot be taken away again
    error(hr.patch(f"/Users/{uid}", {"op": "remove", "path": "emails"}), 400, "invalidValue")


def test_an_address_of_someone_else_is_a_conflict_not_a_merge(app: Flask, hr: Scim) -> None:
    ann = body(hr.post("/Users", {**NO_MAIL, "userName": "ann@acme.example",
                                  "externalId": "hr-ann"}), 201)
    assert account(app, ann["id"]).email == "ann@acme.example"
    uid = body(hr.post("/Users", NO_MAIL), 201)["id"]
    error(hr.patch(f"/Users/{uid}", {"op": "replace", "path": 'emails[type eq "work"].value',
                                     "value": "ann@acme.example"}), 409, "uniqueness")
    # an account outside SCIM holding the address: the same
    with app.app_context():
        from idp.store.unit_of_work import atomic

        with atomic():
            lifecycle.new_account("bob@acme.example", email_verified=True)
    error(hr.patch(f"/Users/{uid}", {"op": "replace", "path": 'emails[type eq "work"].value',
                                     "value": "bob@acme.example"}), 409, "uniqueness")
    assert account(app, uid).email is None
    assert account(app, ann["id"]).email == "ann@acme.example"


def test_a_linked_upstream_identity_signs_in_by_subject(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, upstream: Upstream
) -> None:
    """SSO selects an account by (connector, issuer, subject), never by address: an
    account without one signs in through its linked identity, even when the upstream
    asserts no address; the sign-in gives it none, and the ID token omits ``email``."""
    unit = federation.make_unit(app)
    cid = federation.make_connector(app, upstream, unit, "google", {
        "issuer": upstream.google_issuer, "hosted_domains": ["acme.example"],
        "default_roles": ["employee"]})
    hr = Scim(client, create_token(runner, "acme"))
    uid = body(hr.post("/Users", NO_MAIL), 201)["id"]
    with app.app_context():
        lifecycle.link_upstream(
            UpstreamKey(cid, upstream.google_issuer, "g-walt"), uid, unit, None,
            lifecycle.UpstreamProfile({}, [], set(), {"sub": "g-walt"}), Actor.sso(cid),
        )
    web = app.test_client()
    resp = federation.sso(app, web, upstream, cid, "g-walt",
                          {"given_name": "Walt", "hd": "acme.example"})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert web.get_cookie("ug_session") is not None
    with app.app_context():
        (row,) = db.session.query(SessionRow).filter_by(account_id=uid).all()
        assert row is not None
        acct = db.session.get(Account, uid)
        assert acct is not None and acct.email is None
        from idp.release.claims import released_claims

        claims = released_claims(acct, ["openid", "email", "profile"], unit)
        assert "email" not in claims and "email_verified" not in claims
        assert claims["sub"] == uid and claims["given_name"] == "Walt"
    # an unknown subject without an address still creates nothing
    other = app.test_client()
    resp = federation.sso(app, other, upstream, cid, "g-stranger", {"hd": "acme.example"})
    assert resp.status_code == 403


def test_saml_e_mail_nameid_is_refused_persistent_works(
    app: Flask, client: FlaskClient, hr: Scim
) -> None:
    """An SP registered for e-mail NameIDs gets Responder/InvalidNameIDPolicy for an
    account without an address (no assertion with an empty NameID); an SP with
    persistent NameIDs signs the same account in."""
    oidc.ensure_login_endpoint(app)
    uid = body(hr.post("/Users", NO_MAIL), 201)["id"]
    mail = saml_flow.make_sp(app, client, {"nameid_format": "email"}, host="mail.example")
    resp, _ = saml_flow.start(client, mail)
    ix_id = saml_flow.finish_login(app, resp, uid)
    action, fields = posted_form(saml_flow.resume(client, ix_id))
    assert action == mail.acs_url
    doc = etree.fromstring(response_xml(fields).encode())
    codes = [c.get("Value") for c in doc.iterfind(".//{*}StatusCode")]
    assert codes == [STATUS_RESPONDER, STATUS_INVALID_NAMEID_POLICY]
    assert doc.find(".//{*}Assertion") is None
    shop = saml_flow.make_sp(app, client, host="shop.example")
    auth = shop.accept(*saml_flow.sign_in(app, client, shop, uid))
    assert auth.get_errors() == [], auth.get_last_error_reason()
    assert auth.get_nameid_format() == NAMEID_PERSISTENT
