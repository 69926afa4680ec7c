"""SSO by subject for a SCIM-provisioned person without an e-mail address (issue 18,
item 2's open end): the unit's HR system names the person's upstream subject as the
SCIM ``externalId``; the first sign-in through the same unit's connector links that
upstream identity to the person and signs them in. Against the real upstream
provider. A unit never claims another unit's subject, nor an account with an
address (that one proves its address with an e-mail code)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from idp.store.db import db
from idp.store.models import AuditEvent, UpstreamIdentity
from tests import test_federation_flow as flow
from tests.support.scim import USER, create_token
from tests.support.upstream import Upstream

google = flow.google  # the acme unit (acme.example verified) and its Google connector

NO_MAIL = {"given_name": "Nora", "family_name": "Picker", "hd": "acme.example"}


def provision(client: FlaskClient, token: str, user_name: str, external_id: str,
              email: str | None = None) -> str:
    doc: dict[str, Any] = {"schemas": [USER], "userName": user_name, "externalId": external_id}
    if email:
        doc["emails"] = [{"value": email, "type": "work", "primary": True}]
    resp = client.post("/scim/v2/Users", json=doc, content_type="application/scim+json",
                       headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return str(resp.get_json()["id"])


def linked(app: Flask, subject: str) -> list[UpstreamIdentity]:
    with app.app_context():
        return list(db.session.scalars(
            select(UpstreamIdentity).where(UpstreamIdentity.subject == subject)))


def test_the_units_connector_links_the_provisioned_person_by_subject(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, upstream: Upstream,
    google: tuple[str, str],
) -> None:
    unit_id, cid = google
    provision(client, create_token(runner, "acme"), "p-0042", "g-nora")
    resp = flow.sso(app, client, upstream, cid, "g-nora", NO_MAIL)
    assert resp.status_code == 303, resp.get_data(as_text=True)[:300]
    assert client.get_cookie("ug_session") is not None
    [link] = linked(app, "g-nora")
    with app.app_context():
        from idp.store.models import Account, ScimUser

        account = db.session.get(Account, link.account_id)
        assert account is not None and account.email is None
        record = db.session.scalar(select(ScimUser).where(ScimUser.account_id == account.id))
        assert record is not None and record.external_id == "g-nora"
        assert record.unit_id == unit_id and link.connector_id == cid
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "federation.identity_linked",
            AuditEvent.target == account.id))
        assert event is not None and event.details["proof"] == "scim_external_id"
    # the next sign-in finds the identity
    again = app.test_client()
    assert flow.sso(app, again, upstream, cid, "g-nora", NO_MAIL).status_code == 303
    assert len(linked(app, "g-nora")) == 1


def test_another_units_record_or_an_account_with_an_address_is_not_claimed(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, upstream: Upstream,
    google: tuple[str, str],
) -> None:
    _, cid = google
    flow.make_unit(app, "beta", ("beta.example",))
    provision(client, create_token(runner, "beta", "Beta HR"), "b-7", "g-bea")
    provision(client, create_token(runner, "acme"), "p-0043", "g-mia", "mia@acme.example")
    # beta's HR names g-bea, but the connector is acme's: no link, no account
    assert flow.sso(app, client, upstream, cid, "g-bea", NO_MAIL).status_code == 403
    assert linked(app, "g-bea") == []
    # an account with an address is linked only after an e-mail code, never by subject
    assert flow.sso(app, app.test_client(), upstream, cid, "g-mia",
                    NO_MAIL).status_code == 403
    assert linked(app, "g-mia") == []


def test_two_records_with_the_same_external_id_link_nobody(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, upstream: Upstream,
    google: tuple[str, str],
) -> None:
    _, cid = google
    token = create_token(runner, "acme")
    provision(client, token, "p-1", "g-twin")
    provision(client, token, "p-2", "g-twin")
    assert flow.sso(app, client, upstream, cid, "g-twin", NO_MAIL).status_code == 403
    assert linked(app, "g-twin") == []
