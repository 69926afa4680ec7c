"""Accesses (``idp.accounts.accesses``): a person's access to a unit has its own status and
end; only a granting access (active, not ended) gives claims, SAML attributes and
rights, and each unit releases its own employer facts for the unit chosen."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.accounts import accesses
from idp.accounts import lifecycle as accounts
from idp.release import claims
from idp.rights import Actor, may
from idp.store.db import db
from idp.store.models import Account, utcnow
from idp.store.unit_of_work import atomic
from tests.support import oidc, saml_flow
from tests.support.saml_sp import ServiceProvider, posted_form

WALLET = "openid profile email wallet org"


@pytest.fixture(autouse=True)
def _login_endpoint(app: Flask) -> None:
    oidc.ensure_login_endpoint(app)


@pytest.fixture
def two_units(app: Flask) -> tuple[str, str, str]:
    """Ann, main user of Corp (cost centre CC-CORP) and of Other (CC-OTHER)."""
    ann = oidc.make_account(app, "ann@corp.example")
    corp = oidc.make_unit(app, ann, "Corp GmbH", roles=["main_user"], fields=("desk",),
                          facts={"cost_centre": "CC-CORP", "extra.desk": "B-12"})
    other = oidc.make_unit(app, ann, "Other AG", roles=["main_user"], fields=("desk",),
                           facts={"cost_centre": "CC-OTHER", "extra.desk": "O-1"})
    return ann, corp, other


def saml_attributes(
    app: Flask, sp: ServiceProvider, ann: str, unit_id: str
) -> dict[str, list[str]]:
    client = app.test_client()
    resp, request_id = saml_flow.start(client, sp)
    ix_id = saml_flow.finish_login(app, resp, ann, unit_id=unit_id)
    auth = sp.accept(posted_form(saml_flow.resume(client, ix_id))[1], request_id)
    assert auth.get_errors() == [], auth.get_last_error_reason()
    return dict(auth.get_friendlyname_attributes())


def test_each_unit_releases_its_own_facts_in_the_saml_assertion(
    app: Flask, two_units: tuple[str, str, str]
) -> None:
    ann, corp, other = two_units
    sp = saml_flow.make_sp(app, app.test_client())
    attrs = saml_attributes(app, sp, ann, other)
    assert attrs["costCentre"] == ["CC-OTHER"] and attrs["o"] == ["Other AG"]
    attrs = saml_attributes(app, sp, ann, corp)
    assert attrs["costCentre"] == ["CC-CORP"] and attrs["o"] == ["Corp GmbH"]


def test_each_unit_releases_its_own_facts_in_token_and_userinfo(
    app: Flask, client: FlaskClient, two_units: tuple[str, str, str]
) -> None:
    ann, corp, other = two_units
    rp = oidc.register(app, scope=WALLET)
    for unit_id, centre, desk in ((other, "CC-OTHER", "O-1"), (corp, "CC-CORP", "B-12")):
        body = oidc.exchange(client, rp, oidc.sign_in(app, client, rp, ann, unit_id=unit_id,
                                                      scope=WALLET)).get_json()
        token = oidc.verify_jwt(client, body["id_token"]).claims
        info = oidc.userinfo(client, body["access_token"]).get_json()
        for got in (token, info):
            assert (got["org_id"], got["cost_centre"]) == (unit_id, centre)
            assert got["wallet_fields"] == {"desk": desk}


def test_an_ended_access_gives_nothing(
    app: Flask, client: FlaskClient, two_units: tuple[str, str, str]
) -> None:
    ann, corp, other = two_units
    rp = oidc.register(app, scope=WALLET)
    body = oidc.exchange(client, rp, oidc.sign_in(app, client, rp, ann, unit_id=other,
                                                  scope=WALLET)).get_json()
    with app.app_context():
        with atomic():
            assert accesses.set_end(ann, other, utcnow() - timedelta(seconds=1), "test")
        account = db.session.get(Account, ann)
        assert account is not None
        released = claims.released_claims(account, WALLET.split(), other)
        assert not {"org_id", "roles", "cost_centre", "wallet_fields"} & set(released)
        assert not may(Actor.account(ann), "users.read", other)
        assert may(Actor.account(ann), "users.read", corp)
        assert [a.unit_id for a in accounts.accesses(ann)] == [corp]
        found = accesses.activity(ann, other)
        assert found is not None and found.status == "active" and not found.granting
    info = oidc.userinfo(client, body["access_token"]).get_json()  # a token issued before
    assert "org_id" not in info and "cost_centre" not in info and info["sub"] == ann
    with app.app_context():  # an end in the future still grants
        with atomic():
            assert accesses.set_end(ann, other, utcnow() + timedelta(days=1), "test")
        assert may(Actor.account(ann), "users.read", other)


def test_a_suspended_or_invited_access_gives_nothing_and_keeps_its_roles(
    app: Flask, two_units: tuple[str, str, str]
) -> None:
    ann, _corp, other = two_units
    with app.app_context():
        with atomic():
            assert accesses.suspend(ann, other, "test")
            assert not accesses.suspend(ann, other, "test")  # already: no change
        account = db.session.get(Account, ann)
        assert account is not None
        assert claims.access_for(ann, other) is None
        assert claims.access_for(ann, None) is not None  # the only granting one: Corp
        assert not may(Actor.account(ann), "users.read", other)
        row = accesses.find(ann, other)
        assert row is not None and row.roles == ["main_user"] and row.cost_centre == "CC-OTHER"
        with atomic():
            assert accesses.reactivate(ann, other, "test")
        assert may(Actor.account(ann), "users.read", other)
        unit = oidc.make_unit(app, ann, "Invited KG")
        with atomic():
            accesses.remove(ann, unit, "test")
            accesses.create(ann, unit, ["main_user"], "test",
                            status=accesses.AccessStatus.INVITED)
        assert not may(Actor.account(ann), "users.read", unit)
        with atomic():
            assert accesses.activate(ann, unit, "test")
        assert may(Actor.account(ann), "users.read", unit)


def test_activity_says_registered_and_the_last_sign_in_through_the_access(
    app: Flask, client: FlaskClient
) -> None:
    ann = oidc.make_account(app, "ann@corp.example", email_verified=False)
    unit = oidc.make_unit(app, ann, "Corp GmbH")
    with app.app_context():
        found = accesses.activity(ann, unit)
        assert found is not None and not found.registered and found.last_signin_at is None
        assert accesses.activity(ann, "nope") is None
    rp = oidc.register(app)
    oidc.sign_in(app, client, rp, ann, unit_id=unit)
    with app.app_context():
        found = accesses.activity(ann, unit)
        assert found is not None and found.registered and found.last_signin_at is not None
        assert found.status == "active" and found.granting


def test_a_silent_sign_in_never_returns_to_a_unit_that_suspended_the_access(
    app: Flask, client: FlaskClient, two_units: tuple[str, str, str]
) -> None:
    """A live session signs in again at the same merchant with the unit chosen last
    time; once that unit suspends the access, it is no longer that choice (the person
    is asked again, among the units that still grant), and the suspended access's last
    sign-in is not moved."""
    from idp.store import grants_repo

    ann, _corp, other = two_units
    rp = oidc.register(app, scope=WALLET)
    oidc.exchange(client, rp, oidc.sign_in(app, client, rp, ann, unit_id=other, scope=WALLET))
    with app.app_context():
        assert grants_repo.last_unit(ann, rp.client_id) == other
        with atomic():
            assert accesses.suspend(ann, other, "test")
        assert grants_repo.last_unit(ann, rp.client_id) is None
        before = accesses.activity(ann, other)
        with atomic():
            accesses.record_signin(ann, other, utcnow() + timedelta(hours=1))
        after = accesses.activity(ann, other)
        assert before is not None and after is not None
        assert after.last_signin_at == before.last_signin_at


def test_suspending_an_access_revokes_the_units_tokens_and_no_others(
    app: Flask, client: FlaskClient, two_units: tuple[str, str, str]
) -> None:
    ann, corp, other = two_units
    rp = oidc.register(app, scope=WALLET + " offline_access",
                       grant_types=["authorization_code", "refresh_token"])
    tokens = {}
    for unit_id in (other, corp):
        tokens[unit_id] = oidc.exchange(client, rp, oidc.sign_in(
            app, client, rp, ann, unit_id=unit_id, scope=WALLET + " offline_access")).get_json()
    with app.app_context(), atomic():
        assert accesses.suspend(ann, other, "test")
    assert oidc.refresh(client, rp, tokens[other]["refresh_token"]).status_code == 400
    assert oidc.refresh(client, rp, tokens[corp]["refresh_token"]).status_code == 200
