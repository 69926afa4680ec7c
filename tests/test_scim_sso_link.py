"""SSO for people without an e-mail address (issue 18 item 2): a connector's
``scim_external_id_claim`` links an unknown upstream identity to the user the
connector's own unit provisioned over SCIM without an address and with that
``externalId``; administrators link and unlink subjects explicitly.

Against the real upstream OpenID provider (node-oidc-provider), the real SCIM
endpoint, the real ``/authorize`` and token endpoints of a merchant. The refusals:
another unit's connector, a sub-unit's SCIM user, an account with an address, a
deactivated user, an existing link (never moved), a connector without the setting.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from idp.accounts import lifecycle
from idp.audit import Actor
from idp.cli import main
from idp.cli.units import actor as cli_actor
from idp.config import apply as config_apply
from idp.config import export as config_export
from idp.domains import rules as domain_rules
from idp.federation import admin
from idp.rights import SYSTEM
from idp.store import connectors_repo
from idp.store.db import db
from idp.store.models import Account, AuditEvent, UpstreamIdentity
from idp.store.upstream_identities_repo import UpstreamKey
from tests import test_federation_flow as federation
from tests.support import oidc
from tests.support.api import api_for, assert_problem
from tests.support.scim import ENTERPRISE, USER, Scim, body, create_token
from tests.support.smtp import SmtpSink
from tests.support.upstream import Upstream
from tests.test_company_sign_in import (  # noqa: F401 - fixtures
    Company,
    Person,
    acme,
    add_connector,
    authorize,
    redeem,
    settings_overrides,
    walk,
    web,
)

SCOPE = "openid profile email org"


def no_mail(user_name: str, external_id: str, **extra: Any) -> dict[str, Any]:
    """What an HR system sends for someone without a mailbox."""
    return {
        "schemas": [USER, ENTERPRISE], "userName": user_name, "externalId": external_id,
        "name": {"givenName": "Walt", "familyName": "Worker"}, "active": True, **extra,
    }


def identities_of(app: Flask, account_id: str) -> list[tuple[str, str, str]]:
    with app.app_context():
        rows = db.session.query(UpstreamIdentity).filter_by(account_id=account_id).all()
        return [(r.connector_id, r.issuer, r.subject) for r in rows]


def events(app: Flask, action: str, account_id: str) -> list[dict[str, Any]]:
    with app.app_context():
        rows = db.session.query(AuditEvent).filter_by(action=action, target=account_id).all()
        return [dict(r.details or {}) for r in rows]


# -- end to end at a merchant, the upstream in its default configuration -------------


def test_scim_user_without_email_signs_in_at_a_merchant_by_external_id(
    app: Flask, web: FlaskClient, runner: FlaskCliRunner,  # noqa: F811
    smtp_server: SmtpSink, upstream: Upstream, acme: Company,  # noqa: F811
) -> None:
    """SCIM POSTs a user without ``emails`` whose externalId is the upstream
    account's ``sub``; the person signs in through the unit's connector (an OpenID
    provider in node-oidc-provider's default claims setup: nothing but ``sub``); the
    merchant's ID token carries that account's ``sub`` and no ``email``."""
    cid = add_connector(app, upstream, acme.unit_id, "oidc", {
        "issuer": upstream.plain_issuer, "scim_external_id_claim": "sub"})
    with app.app_context():
        domain_rules.set_rules("acme.example", require_sso=True, connector=cid)
    hr = Scim(web, create_token(runner, "acme"))
    uid = body(hr.post("/Users", no_mail("P-4711", "up-walt")), 201)["id"]

    rp = oidc.register(app, scope=SCOPE)
    first, params = authorize(web, rp, login_hint="walt@acme.example")
    upstream.login_as("up-walt", {})  # the provider's account: a subject, no address
    who = Person("walt@acme.example", smtp_server, upstream=upstream)
    answer = redeem(web, rp, walk(web, first, who), params)

    assert who.seen == ["upstream", "consent"]
    assert answer.id_token["sub"] == uid
    assert "email" not in answer.id_token and "email" not in answer.userinfo
    assert answer.id_token["org_id"] == acme.unit_id
    with app.app_context():
        acct = db.session.get(Account, uid)
        assert acct is not None and acct.email is None
    assert identities_of(app, uid) == [(cid, upstream.plain_issuer, "up-walt")]
    (linked,) = events(app, "federation.identity_linked", uid)
    assert linked["proof"] == "scim_external_id" and linked["subject"] == "up-walt"

    # the next sign-in is by the link itself: no second identity, no new account
    web2 = app.test_client()
    resp = federation.sso(app, web2, upstream, cid, "up-walt", {})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert len(identities_of(app, uid)) == 1


# -- the refusals, through SCIM and the federation callback ---------------------------


@pytest.fixture
def hr_acme(app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> tuple[str, Scim]:
    unit_id = federation.make_unit(app)
    return unit_id, Scim(client, create_token(runner, "acme"))


def plain_connector(app: Flask, upstream: Upstream, unit_id: str,
                    claim: str | None = "sub") -> str:
    settings: dict[str, Any] = {"issuer": upstream.plain_issuer}
    if claim:
        settings["scim_external_id_claim"] = claim
    return federation.make_connector(app, upstream, unit_id, "oidc", settings)


def provisioned(app: Flask, upstream: Upstream, hr_acme: tuple[str, Scim], user_name: str,
                external_id: str, claim: str | None = "sub", **extra: Any) -> tuple[str, str]:
    """ACME's SCIM user (without an address unless ``extra`` has ``emails``), and an
    ACME connector: (account, connector)."""
    acme_id, hr = hr_acme
    uid = body(hr.post("/Users", no_mail(user_name, external_id, **extra)), 201)["id"]
    return str(uid), plain_connector(app, upstream, acme_id, claim)


def refused(resp: Any) -> None:
    assert resp.status_code == 403, resp.get_data(as_text=True)


def signs_in_nobody(app: Flask, upstream: Upstream, cid: str, subject: str,
                    account_id: str) -> str:
    """A first sign-in of ``subject`` through ``cid`` (nothing but ``sub`` upstream)
    is refused, and ``account_id`` gets no identity; the refusal page's text."""
    browser = app.test_client()
    resp = federation.sso(app, browser, upstream, cid, subject, {})
    refused(resp)
    assert browser.get_cookie("ug_session") is None
    assert identities_of(app, account_id) == []
    return str(resp.get_data(as_text=True))


def test_another_units_connector_never_reaches_the_scim_user(
    app: Flask, upstream: Upstream, hr_acme: tuple[str, Scim]
) -> None:
    _, hr = hr_acme
    uid = body(hr.post("/Users", no_mail("P-1", "shared-id")), 201)["id"]
    globex = federation.make_unit(app, "globex", ("globex.example",))
    cid_b = plain_connector(app, upstream, globex)
    signs_in_nobody(app, upstream, cid_b, "shared-id", uid)
    with app.app_context():
        assert db.session.query(UpstreamIdentity).count() == 0


def test_a_sub_units_scim_user_is_not_reached_by_the_parents_connector(
    app: Flask, runner: FlaskCliRunner, client: FlaskClient, upstream: Upstream,
    hr_acme: tuple[str, Scim],
) -> None:
    acme_id, _ = hr_acme
    from idp.units import registry as units

    with app.app_context():
        units.create("ACME Sales", parent="acme", slug="acme-sales")
    sales_hr = Scim(client, create_token(runner, "acme-sales"))
    uid = body(sales_hr.post("/Users", no_mail("S-1", "sales-id")), 201)["id"]
    cid = plain_connector(app, upstream, acme_id)
    signs_in_nobody(app, upstream, cid, "sales-id", uid)


def test_an_account_with_an_address_is_never_linked_by_external_id(
    app: Flask, upstream: Upstream, hr_acme: tuple[str, Scim]
) -> None:
    work = [{"value": "ann@acme.example", "type": "work", "primary": True}]
    uid, cid = provisioned(app, upstream, hr_acme, "ann@acme.example", "ann-id", emails=work)
    signs_in_nobody(app, upstream, cid, "ann-id", uid)


def test_a_deactivated_scim_user_is_refused(
    app: Flask, upstream: Upstream, hr_acme: tuple[str, Scim]
) -> None:
    uid, cid = provisioned(app, upstream, hr_acme, "P-3", "gone-id")
    hr = hr_acme[1]
    body(hr.patch(f"/Users/{uid}", {"op": "replace", "path": "active", "value": False}), 200)
    assert "cannot sign in" in signs_in_nobody(app, upstream, cid, "gone-id", uid)


def test_an_existing_link_wins_and_is_never_moved(
    app: Flask, upstream: Upstream, hr_acme: tuple[str, Scim]
) -> None:
    acme_id, hr = hr_acme
    walt = body(hr.post("/Users", no_mail("P-5", "moved-id")), 201)["id"]
    other = body(hr.post("/Users", no_mail("P-6", "other-id")), 201)["id"]
    cid = plain_connector(app, upstream, acme_id)
    key = UpstreamKey(cid, upstream.plain_issuer, "moved-id")
    with app.app_context():
        lifecycle.link_upstream(key, other, acme_id, None,
                                lifecycle.UpstreamProfile({}, [], set(), {}), Actor.sso(cid))
    resp = federation.sso(app, app.test_client(), upstream, cid, "moved-id", {})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert identities_of(app, walt) == []
    assert identities_of(app, other) == [(cid, upstream.plain_issuer, "moved-id")]
    # the administrator cannot move it either
    with app.app_context(), pytest.raises(admin.LinkRefused) as exc:
        admin.link_subject(SYSTEM, acme_id, cid, walt, "moved-id")
    assert exc.value.code == "subject_linked"
    assert identities_of(app, other) == [(cid, upstream.plain_issuer, "moved-id")]


def test_without_the_setting_nothing_is_linked(
    app: Flask, upstream: Upstream, hr_acme: tuple[str, Scim]
) -> None:
    uid, cid = provisioned(app, upstream, hr_acme, "P-7", "plain-id", claim=None)
    signs_in_nobody(app, upstream, cid, "plain-id", uid)


def test_a_second_subject_with_the_value_is_not_linked_to_the_same_account(
    app: Flask, upstream: Upstream, hr_acme: tuple[str, Scim]
) -> None:
    """Once the account has an identity of the connector, another identity whose
    claim carries the same value (here a custom claim) gets nothing."""
    acme_id, hr = hr_acme
    uid = body(hr.post("/Users", no_mail("P-8", "emp-8")), 201)["id"]
    cid = federation.make_connector(app, upstream, acme_id, "google", {
        "issuer": upstream.google_issuer, "hosted_domains": ["acme.example"],
        "scim_external_id_claim": "employeeId"})
    claims = {"employeeId": "emp-8", "hd": "acme.example"}
    resp = federation.sso(app, app.test_client(), upstream, cid, "g-8a", claims)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    refused(federation.sso(app, app.test_client(), upstream, cid, "g-8b", claims))
    assert identities_of(app, uid) == [(cid, upstream.google_issuer, "g-8a")]


def test_a_verified_address_of_another_account_still_needs_its_code(
    app: Flask, upstream: Upstream, hr_acme: tuple[str, Scim]
) -> None:
    """Precedence: an account holding the verified address asks for its e-mail code
    first; the externalId match never bypasses that proof."""
    acme_id, hr = hr_acme
    uid = body(hr.post("/Users", no_mail("P-9", "g-nine")), 201)["id"]
    body(hr.post("/Users", no_mail("bob@acme.example", "bob-id", emails=[
        {"value": "bob@acme.example", "type": "work", "primary": True}])), 201)
    cid = federation.make_connector(app, upstream, acme_id, "google", {
        "issuer": upstream.google_issuer, "hosted_domains": ["acme.example"],
        "scim_external_id_claim": "sub"})
    resp = federation.sso(app, app.test_client(), upstream, cid, "g-nine", {
        "email": "bob@acme.example", "email_verified": True, "hd": "acme.example"})
    assert resp.status_code == 200 and "code" in resp.get_data(as_text=True)
    assert identities_of(app, uid) == []


# -- the administrator's path: API and CLI --------------------------------------------


def test_admin_api_links_lists_and_unlinks(
    app: Flask, client: FlaskClient, upstream: Upstream, hr_acme: tuple[str, Scim]
) -> None:
    acme_id, hr = hr_acme
    uid = body(hr.post("/Users", no_mail("P-20", "hr-20")), 201)["id"]
    ann = body(hr.post("/Users", no_mail("ann@acme.example", "hr-21", emails=[
        {"value": "ann@acme.example", "type": "work", "primary": True}])), 201)["id"]
    cid = plain_connector(app, upstream, acme_id, claim=None)
    globex = federation.make_unit(app, "globex", ("globex.example",))
    cid_b = plain_connector(app, upstream, globex, claim=None)
    api = api_for(app, client, acme_id)
    base = f"/units/{acme_id}/connectors/{cid}/links"

    resp = api.post(base, {"account": "P-20", "subject": "sub-20"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    link = resp.get_json()
    assert (link["account_id"], link["issuer"], link["subject"]) == (
        uid, upstream.plain_issuer, "sub-20")
    (event,) = events(app, "federation.identity_linked", uid)
    assert event["proof"] == "administrator"

    assert_problem(api.post(base, {"account": uid, "subject": "sub-20"}), 409, "subject_linked")
    assert_problem(api.post(base, {"account": ann, "subject": "sub-21"}), 422,
                   "not_email_less_scim_user")
    assert_problem(api.post(base, {"account": "nobody", "subject": "sub-22"}), 422,
                   "not_email_less_scim_user")
    # another unit's connector, under this unit: not found; under that unit: not ours
    assert_problem(api.post(f"/units/{acme_id}/connectors/{cid_b}/links",
                            {"account": uid, "subject": "sub-23"}), 404)
    assert_problem(api.post(f"/units/{globex}/connectors/{cid_b}/links",
                            {"account": uid, "subject": "sub-23"}), 404)
    # globex's administrator cannot link acme's user through globex's connector
    api_b = api_for(app, client, globex)
    assert_problem(api_b.post(f"/units/{globex}/connectors/{cid_b}/links",
                              {"account": uid, "subject": "sub-24"}), 422,
                   "not_email_less_scim_user")
    assert identities_of(app, uid) == [(cid, upstream.plain_issuer, "sub-20")]

    second = api.post(base, {"account": uid, "subject": "sub-20b"}).get_json()
    listed = api.get(base, query_string={"account_id": uid, "limit": 1})
    assert listed.status_code == 200, listed.get_data(as_text=True)
    page = listed.get_json()
    rest = api.get(base, query_string={"account_id": uid, "cursor": page["next_cursor"]})
    seen = [x["id"] for x in page["items"] + rest.get_json()["items"]]
    assert sorted(seen) == sorted([link["id"], second["id"]])
    assert rest.get_json()["next_cursor"] is None
    assert api.delete(f"{base}/{second['id']}").status_code == 204

    # the link signs the person in
    resp = federation.sso(app, app.test_client(), upstream, cid, "sub-20", {})
    assert resp.status_code == 303, resp.get_data(as_text=True)

    assert_problem(api_b.delete(f"/units/{globex}/connectors/{cid_b}/links/{link['id']}"),
                   404)
    assert api.delete(f"{base}/{link['id']}").status_code == 204
    assert identities_of(app, uid) == []
    gone = [e["subject"] for e in events(app, "federation.identity_unlinked", uid)]
    assert sorted(gone) == ["sub-20", "sub-20b"]
    refused(federation.sso(app, app.test_client(), upstream, cid, "sub-20", {}))
    assert_problem(api.delete(f"{base}/{link['id']}"), 404)


def test_an_employee_may_not_link(
    app: Flask, client: FlaskClient, upstream: Upstream, hr_acme: tuple[str, Scim]
) -> None:
    from idp.rights import Actor as RightsActor
    from idp.rights import NotPermitted

    acme_id = hr_acme[0]
    uid, cid = provisioned(app, upstream, hr_acme, "P-30", "hr-30", claim=None)
    with app.app_context(), pytest.raises(NotPermitted):
        admin.link_subject(RightsActor.account(uid), acme_id, cid, uid, "sub-30")
    assert identities_of(app, uid) == []


def cli(runner: FlaskCliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(main, list(args))
    assert result.exit_code == code, result.output
    return str(result.output)


def test_cli_sets_the_claim_links_lists_and_unlinks(
    app: Flask, runner: FlaskCliRunner, upstream: Upstream, hr_acme: tuple[str, Scim]
) -> None:
    uid, cid = provisioned(app, upstream, hr_acme, "P-40", "hr-40", claim=None)
    shown = json.loads(cli(runner, "connectors", "set", cid, "--scim-external-id-claim",
                           "sub", "--json"))
    assert shown["settings"]["scim_external_id_claim"] == "sub"
    assert "must be a claim" in cli(runner, "connectors", "set", cid,
                                    "--scim-external-id-claim", "a b", code=1)
    link = json.loads(cli(runner, "connectors", "link", cid, "--account", "p-40",
                          "--subject", "sub-40", "--json"))
    assert link["account_id"] == uid and link["issuer"] == upstream.plain_issuer
    assert "subject_linked" in cli(runner, "connectors", "link", cid, "--account", uid,
                                   "--subject", "sub-40", code=1)
    listed = json.loads(cli(runner, "connectors", "links", cid, "--json"))
    assert [x["id"] for x in listed] == [link["id"]]
    cli(runner, "connectors", "unlink", cid, link["id"])
    assert identities_of(app, uid) == []
    with app.app_context():  # by the operator who ran the command, not "system"
        for action in ("federation.identity_linked", "federation.identity_unlinked"):
            (row,) = db.session.query(AuditEvent).filter_by(action=action, target=uid).all()
            assert (row.actor_kind, row.actor) == ("operator", cli_actor())
    assert "link_not_found" in cli(runner, "connectors", "unlink", cid, link["id"], code=1)
    cli(runner, "connectors", "set", cid, "--scim-external-id-claim", "")
    with app.app_context():
        row = connectors_repo.get(cid)
        assert row is not None and "scim_external_id_claim" not in row.settings


CONFIG = """
version: 1
units:
  - slug: acme
    name: ACME GmbH
    connectors:
      - name: ACME Okta
        kind: okta
        issuer: https://acme.okta.example
        client_id: 0oa1example
        client_secret_env: SCIMSSO_TEST_OKTA_SECRET
        scim_external_id_claim: {claim}
"""


def test_apply_sets_and_export_shows_the_claim(app: Flask, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    monkeypatch.setenv("SCIMSSO_TEST_OKTA_SECRET", "okta-client-secret")

    def run(text: str) -> config_apply.ApplyResult:
        return config_apply.apply(config_apply.parse(text), dry_run=False, actor="test")

    with app.app_context():
        run(CONFIG.format(claim="sub"))
        (row,) = connectors_repo.list_all()
        assert row.settings["scim_external_id_claim"] == "sub"
        exported = yaml.safe_load(config_export.export_yaml())
        (conn,) = exported["units"][0]["connectors"]
        assert conn["scim_external_id_claim"] == "sub"
        changes = run(CONFIG.format(claim="uid")).changes
        assert [c.kind for c in changes] == ["connector"]
        db.session.expire_all()
        (row,) = connectors_repo.list_all()
        assert row.settings["scim_external_id_claim"] == "uid"
        with pytest.raises(Exception, match="scim_external_id_claim"):
            run(CONFIG.format(claim='"a b"'))
        db.session.rollback()
        db.session.expire_all()
        (row,) = connectors_repo.list_all()
        assert row.settings["scim_external_id_claim"] == "uid"


def test_a_scim_user_with_administrative_rights_is_not_linked_by_the_claim(
    app: Flask, upstream: Upstream, hr_acme: tuple[str, Scim]
) -> None:
    """Whoever controls the upstream would otherwise sign in as a main user: such a
    person is linked only by an administrator holding as much."""
    from idp.accounts import accesses
    from idp.store.unit_of_work import atomic

    acme_id, _hr = hr_acme
    uid, cid = provisioned(app, upstream, hr_acme, "P-9", "boss-id")
    with app.app_context(), atomic():
        row = accesses.find(uid, acme_id)
        assert row is not None
        accesses.set_roles(row, ["main_user", "employee"])
    signs_in_nobody(app, upstream, cid, "boss-id", uid)
