"""SECURITY.md account-lifecycle clauses end to end, through the real SCIM API, the
real login pages and a real slapd:

* "all sessions ended when an account is ... deleted" (SCIM DELETE), with its tokens;
* "Changing an email address never changes business-unit membership without verifying
  the new address" — when the change comes from SCIM or from an LDAP sync."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from idp.domains import registry as domains
from idp.domains import rules as domain_rules
from idp.ldap import sync as ldap_sync
from idp.mail.outbox import courier
from idp.store import ldap_repo, sessions_repo
from idp.store.db import db
from idp.store.models import Access, Account, Unit
from idp.units import registry as units
from tests.support import oidc
from tests.support import slapd as ldap_test
from tests.support.login import (
    add_protocol_stand_in,
    code_from_outbox,
    path_of,
    start,
    submit_code,
    submit_email,
)
from tests.support.scim import USER, Scim, body, create_token, make_unit


@pytest.fixture
def web(app: Flask, client: FlaskClient) -> Iterator[FlaskClient]:
    add_protocol_stand_in(app)
    yield client
    courier(app).drain()


def auto_join_domain(app: Flask, unit_slug: str, name: str) -> str:
    """A unit ``unit_slug`` owning the verified, auto-joining domain ``name``."""
    with app.app_context():
        unit = units.create(unit_slug.title(), slug=unit_slug)
        domains.claim(unit_slug, name)
        domains.verify_manually(name, "security test fixture", "test")
        domain_rules.set_rules(name, auto_join=True)
        return unit.id


def unit_slugs(app: Flask, account_id: str) -> set[str]:
    with app.app_context():
        rows = db.session.scalars(
            select(Unit.slug).join(Access, Access.unit_id == Unit.id)
            .where(Access.account_id == account_id))  # fmt: skip
        return set(rows)


def email_sign_in(app: Flask, web: FlaskClient, email: str) -> None:
    """A full e-mail-code sign-in at the login pages (the code proves the address)."""
    login = start(web, prompt="login")
    submit_email(web, login, email)
    resp = submit_code(web, login, code_from_outbox(app, email))
    assert resp.status_code == 303 and not path_of(resp).endswith("/code")


def test_scim_delete_ends_sessions_and_tokens(app: Flask, client: FlaskClient,
                                              runner: FlaskCliRunner) -> None:  # fmt: skip
    """SCIM DELETE: sessions gone, access and refresh tokens inactive, userinfo and
    refresh refused, no new sign-in."""
    make_unit(app, "acme")
    scim = Scim(client, create_token(runner, "acme"))
    uid = body(scim.post("/Users", {"schemas": [USER], "userName": "ann@acme.example",
                                    "name": {"givenName": "Ann", "familyName": "A"}}),
               201)["id"]  # fmt: skip
    rp = oidc.register(app)
    tokens = oidc.exchange(client, rp, oidc.sign_in(app, client, rp, uid)).get_json()
    oidc.start_session(app, client, uid)
    with app.app_context():
        assert sessions_repo.for_account(uid) != []
    assert oidc.userinfo(client, tokens["access_token"]).status_code == 200

    assert scim.delete(f"/Users/{uid}").status_code == 204

    with app.app_context():
        assert sessions_repo.for_account(uid) == []
        row = db.session.get(Account, uid)
        assert row is not None and not row.can_sign_in
    for token in (tokens["access_token"], tokens["refresh_token"]):
        info = client.post("/introspect", data={"token": token}, headers=rp.basic())
        assert info.get_json() == {"active": False}
    assert oidc.userinfo(client, tokens["access_token"]).status_code == 401
    assert oidc.refresh(client, rp, tokens["refresh_token"]).status_code == 400
    resp = client.get("/authorize", query_string=oidc.auth_params(rp))
    assert oidc.is_login_redirect(app, resp)  # the old browser session is gone


def test_scim_cannot_move_an_address_into_another_companys_domain(
    app: Flask, web: FlaskClient, runner: FlaskCliRunner
) -> None:
    """HR tries to move an employee's address into another company's auto-join
    domain: refused (400 invalidValue), the address and memberships stay as they were
    (``idp.provisioning.ownership``; issue 10, finding 2)."""
    auto_join_domain(app, "acme", "acme.example")
    make_unit(app, "hr-unit")
    with app.app_context():
        domains.claim("hr-unit", "hr.example")
        domains.verify_manually("hr.example", "security test fixture", "test")
    scim = Scim(web, create_token(runner, "hr-unit"))
    uid = body(scim.post("/Users", {"schemas": [USER], "userName": "ann@hr.example",
                                    "emails": [{"value": "ann@hr.example", "primary": True}],
                                    "name": {"givenName": "Ann", "familyName": "A"}}),
               201)["id"]  # fmt: skip
    email_sign_in(app, web, "ann@hr.example")
    with app.app_context():
        assert db.session.get(Account, uid).email_verified is True  # type: ignore[union-attr]
    assert unit_slugs(app, uid) == {"hr-unit"}

    resp = scim.patch(f"/Users/{uid}", {"op": "replace", "value": {
        "userName": "ann@acme.example",
        "emails": [{"value": "ann@acme.example", "primary": True}]}})
    assert body(resp, 400)["scimType"] == "invalidValue"
    with app.app_context():
        row = db.session.get(Account, uid)
        assert row is not None and row.email == "ann@hr.example"
        assert row.email_verified is True
    assert unit_slugs(app, uid) == {"hr-unit"}


def test_ldap_mail_change_joins_no_unit(app: Flask, directory_id: str, unit_id: str,
                                        directory_server: ldap_test.Slapd) -> None:  # fmt: skip
    """A directory changes a user's mail into another company's auto-join domain: the
    sync keeps the old address (``idp.provisioning.ownership``: no rename into a domain another
    company verified), counts an error and adds no membership."""
    auto_join_domain(app, "other", "other.example")
    with app.app_context():
        directory = ldap_repo.directory(directory_id)
        assert directory is not None
        ldap_sync.run_locked(directory)
        old_address = f"{ldap_test.uid(7)}@acme.example"
        account_id = db.session.scalars(select(Account.id).where(
            Account.email == old_address)).one()  # fmt: skip
    before = unit_slugs(app, account_id)
    assert before == {"acme"}
    directory_server.replace(7, "mail", ["seven@other.example"])
    with app.app_context():
        directory = ldap_repo.directory(directory_id)
        assert directory is not None
        summary = ldap_sync.run_locked(directory)
        assert summary.errors == 1
        assert "another company" in summary.error_samples[0]
        row = db.session.get(Account, account_id)
        assert row is not None and row.email == old_address
    assert unit_slugs(app, account_id) == before
