"""An administrator with ``connectors.manage`` links an upstream subject they control
to a user the unit's SCIM provisioned without an address: never to one who holds
more rights than they do (else that link signs them in as a stronger person, as a
password reset of a stronger person would)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.federation import admin
from idp.rights import Actor, NotPermitted
from idp.rights import groups as permission_groups
from idp.store.db import db
from idp.store.models import Access
from idp.store.unit_of_work import atomic
from tests.support.api import api_for, assert_problem
from tests.support.oidc import make_account
from tests.support.scim import Scim, body
from tests.support.upstream import Upstream
from tests.test_company_sign_in import settings_overrides
from tests.test_scim_sso_link import hr_acme, identities_of, no_mail, plain_connector

__all__ = ["hr_acme", "settings_overrides"]


def roles_of(app: Flask, account_id: str, unit_id: str, roles: list[str]) -> None:
    with app.app_context(), atomic():
        row = db.session.query(Access).filter_by(account_id=account_id, unit_id=unit_id).one()
        row.roles = roles


def test_no_link_to_a_scim_user_holding_more_rights(
    app: Flask, client: FlaskClient, upstream: Upstream, hr_acme: tuple[str, Scim]
) -> None:
    acme_id, hr = hr_acme
    boss = body(hr.post("/Users", no_mail("P-40", "hr-40")), 201)["id"]
    worker = body(hr.post("/Users", no_mail("P-41", "hr-41")), 201)["id"]
    roles_of(app, boss, acme_id, ["main_user"])
    cid = plain_connector(app, upstream, acme_id, claim=None)
    ivo = make_account(app, "ivo@acme.example")
    with app.app_context(), atomic():
        permission_groups.set_group(acme_id, "sso", ["connectors.manage"])
        db.session.add(Access(account_id=ivo, unit_id=acme_id, roles=["sso"], status="active"))
    with app.app_context(), pytest.raises(NotPermitted):
        admin.link_subject(Actor.account(ivo), acme_id, cid, "P-40", "sub-40")
    assert identities_of(app, boss) == []
    # someone who holds no more than IT may be linked by IT
    roles_of(app, worker, acme_id, [])
    with app.app_context():
        admin.link_subject(Actor.account(ivo), acme_id, cid, "P-41", "sub-41")
    assert len(identities_of(app, worker)) == 1
    # over the API: 403; a client with the unit's administration rights may link the
    # main user (it holds what a main user holds)
    api: Any = api_for(app, client, acme_id)
    resp = api.post(f"/units/{acme_id}/connectors/{cid}/links",
                    {"account": "P-40", "subject": "sub-40"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    roles_of(app, boss, acme_id, ["main_user", "helpdesk"])
    with app.app_context():
        permission_groups.set_group(acme_id, "helpdesk", ["impersonate"])
    assert_problem(api.post(f"/units/{acme_id}/connectors/{cid}/links",
                            {"account": "P-40", "subject": "sub-40b"}), 403)
