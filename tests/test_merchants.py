"""Merchants (idp.release.merchants): one record behind each OIDC client and SAML SP, which
consents, sign-ins and grants reference by foreign key; deleting a client or SP
retires its merchant (history and name kept, live grants revoked); an entity ID
registered again is a new merchant; the protocol hot paths never read merchants."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.release import clients, consent, merchants
from idp.saml import registry
from idp.services import ephemeral
from idp.store.db import db
from idp.store.models import Consent, Grant, Merchant, SignIn
from tests.support import oidc, saml_flow
from tests.support.caches import statements
from tests.support.login import csrf_token, path_of, post_form, sign_in_to_dashboard
from tests.support.merchants import merchant_id
from tests.support.saml_sp import posted_form


def _rows(app: Flask, account_id: str) -> dict[str, list[str]]:
    """The merchant ids of the account's consents, sign-ins and grants."""
    with app.app_context():
        return {
            "consents": list(db.session.scalars(
                select(Consent.merchant_id).where(Consent.account_id == account_id))),
            "sign_ins": list(db.session.scalars(
                select(SignIn.merchant_id).where(SignIn.account_id == account_id))),
            "grants": list(db.session.scalars(
                select(Grant.merchant_id).where(Grant.account_id == account_id))),
        }


def _merchant(app: Flask, mid: str) -> Merchant:
    with app.app_context():
        row = merchants.get(mid)
        assert row is not None
        db.session.expunge(row)
        return row


def test_an_oidc_sign_in_references_the_clients_merchant(
    app: Flask, client: FlaskClient
) -> None:
    ann = oidc.make_account(app)
    rp = oidc.register(app, name="Office Supplies Ltd")
    other = oidc.register(app, name="Other Shop")
    shop = merchant_id(app, rp.client_id)
    assert shop != merchant_id(app, other.client_id)
    row = _merchant(app, shop)
    assert (row.name, row.protocol, row.identifier, row.status) == (
        "Office Supplies Ltd", "oidc", rp.client_id, "active")

    si = oidc.sign_in(app, client, rp, ann)
    assert oidc.exchange(client, rp, si).status_code == 200
    assert _rows(app, ann) == {"consents": [shop], "sign_ins": [shop], "grants": [shop]}


def test_a_saml_sign_in_references_the_sps_merchant(app: Flask, client: FlaskClient) -> None:
    ann = oidc.make_account(app)
    sp = saml_flow.make_sp(app, client)
    mid = merchant_id(app, sp.entity_id)
    row = _merchant(app, mid)
    assert (row.protocol, row.identifier, row.status) == ("saml", sp.entity_id, "active")
    saml_flow.sign_in(app, client, sp, ann)
    assert _rows(app, ann) == {"consents": [mid], "sign_ins": [mid], "grants": []}


def test_renaming_a_client_renames_its_merchant(app: Flask) -> None:
    rp = oidc.register(app, name="Old Name")
    with app.app_context():
        clients.update(rp.client_id, name="New Name", actor="test")
    assert _merchant(app, merchant_id(app, rp.client_id)).name == "New Name"


def test_deleting_a_client_retires_its_merchant_and_keeps_the_history(
    app: Flask, client: FlaskClient
) -> None:
    ann = oidc.make_account(app)
    rp = oidc.register(app, name="Office Supplies Ltd",
                       grant_types=["authorization_code", "refresh_token"])
    shop = merchant_id(app, rp.client_id)
    tokens = oidc.exchange(client, rp, oidc.sign_in(app, client, rp, ann)).get_json()

    with app.app_context():
        assert clients.delete(rp.client_id, actor="test")
        assert merchants.of_client(rp.client_id) is None
    row = _merchant(app, shop)
    assert row.status == "removed" and row.removed_at is not None
    assert row.name == "Office Supplies Ltd" and row.identifier == rp.client_id
    # sign-ins, consent and grant stay, still at that merchant; the grant is revoked
    assert _rows(app, ann) == {"consents": [shop], "sign_ins": [shop], "grants": [shop]}
    with app.app_context():
        assert db.session.scalars(select(Grant.revoked_at)).one() is not None
    assert oidc.userinfo(client, tokens["access_token"]).status_code == 401

    # the dashboard still names it, and its consent can still be withdrawn
    html = sign_in_to_dashboard(app, client).get_data(as_text=True)
    gone = "Office Supplies Ltd (no longer connected)"
    for kind in ("signin", "consent"):
        rows = re.findall(rf'<tr class="ug-{kind}">(.*?)</tr>', html, re.S)
        assert len(rows) == 1 and gone in rows[0]
    resp = client.post("/account/consents/withdraw", data={
        "csrf_token": csrf_token(html), "merchant_id": shop})
    assert resp.status_code == 303
    assert _rows(app, ann)["consents"] == []


def test_an_entity_id_registered_again_is_a_new_merchant_without_the_old_consent(
    app: Flask, client: FlaskClient
) -> None:
    ann = oidc.make_account(app)
    sp = saml_flow.make_sp(app, client)
    first = merchant_id(app, sp.entity_id)
    saml_flow.sign_in(app, client, sp, ann)
    with app.app_context():
        assert consent.covers(ann, first, ["openid"])
        assert registry.unregister(sp.entity_id, actor="test") is not None
        registry.register(sp.metadata(), actor="test")
    second = merchant_id(app, sp.entity_id)
    assert second != first and _merchant(app, first).status == "removed"
    with app.app_context():
        assert not consent.covers(ann, second, ["openid"])
    # the next sign-in at the new registration asks for consent again
    oidc.start_session(app, client, ann)
    resp, _ = saml_flow.start(client, sp)
    assert oidc.is_login_redirect(app, resp)


def test_withdrawing_a_saml_consent_on_the_dashboard(app: Flask, client: FlaskClient) -> None:
    ann = oidc.make_account(app)
    sp = saml_flow.make_sp(app, client)
    mid = merchant_id(app, sp.entity_id)
    saml_flow.sign_in(app, client, sp, ann)
    html = sign_in_to_dashboard(app, client).get_data(as_text=True)
    resp = client.post("/account/consents/withdraw", data={
        "csrf_token": csrf_token(html), "merchant_id": mid})
    assert resp.status_code == 303
    assert _rows(app, ann)["consents"] == [] and _rows(app, ann)["sign_ins"] == [mid]


def test_an_interaction_stored_by_an_older_node_finds_its_merchant(
    app: Flask, client: FlaskClient
) -> None:
    """During a rolling upgrade an interaction may come without ``merchant_id``: the
    consent given on it still goes to the client's merchant."""
    ann = oidc.make_account(app)
    rp = oidc.register(app)
    oidc.start_session(app, client, ann)
    resp = client.get("/authorize", query_string=oidc.auth_params(
        rp, code_challenge=oidc.pkce()[1], code_challenge_method="S256"))
    assert oidc.is_login_redirect(app, resp)
    ix_id = oidc.interaction_id(resp)
    with app.app_context():
        stored = ephemeral().get(f"ix:{ix_id}")
        assert stored is not None and stored.pop("merchant_id")
        ephemeral().put(f"ix:{ix_id}", stored, 600)
    login = f"/interaction/{ix_id}"
    resp = client.get(login)
    assert resp.status_code == 303 and path_of(resp) == login + "/consent"
    resp = post_form(client, login + "/consent", login + "/consent", {"decision": "allow"})
    assert resp.status_code == 303
    assert _rows(app, ann)["consents"] == [merchant_id(app, rp.client_id)]


def test_the_hot_paths_read_no_merchant_and_cost_what_they_did(
    app: Flask, client: FlaskClient
) -> None:
    """One sign-in with a live session and earlier consent (authorize: session,
    account, TOTP check, last unit, consent, sign-in insert), its code exchange
    (account, grant, refresh token) and one refresh (token with grant, claim,
    account, new token): the same statements as before merchants existed."""
    ann = oidc.make_account(app)
    rp = oidc.register(app, grant_types=["authorization_code", "refresh_token"])
    assert oidc.exchange(client, rp, oidc.sign_in(app, client, rp, ann)).status_code == 200
    oidc.start_session(app, client, ann)
    # warm, as a running node is: the per-process answer "no unit demands a fresh
    # code every sign-in" (idp.factors.fresh_code) is loaded once per 2 seconds
    assert "code" in oidc.query(client.get("/authorize", query_string=oidc.auth_params(rp)))
    verifier, challenge = oidc.pkce()
    params = oidc.auth_params(rp, code_challenge=challenge, code_challenge_method="S256")
    with statements(app) as authorize:
        resp = client.get("/authorize", query_string=params)
    q = oidc.query(resp)
    assert "code" in q, q
    si = oidc.SignIn(q["code"], params["state"], params["nonce"], verifier, params, q)
    with statements(app) as token:
        body = oidc.exchange(client, rp, si).get_json()
    with statements(app) as refresh:
        assert oidc.refresh(client, rp, body["refresh_token"]).status_code == 200
    assert (len(authorize), len(token), len(refresh)) == (6, 3, 4)
    assert not [s for s in authorize + token + refresh if "merchants" in s]


def test_saml_sso_reads_no_merchant_and_costs_what_it_did(
    app: Flask, client: FlaskClient
) -> None:
    """SP-initiated SSO with a live session and earlier consent: SP, session,
    account, TOTP check, last unit, consent, SLO participant, memberships, sign-in
    insert, as before merchants existed."""
    ann = oidc.make_account(app)
    sp = saml_flow.make_sp(app, client)
    saml_flow.sign_in(app, client, sp, ann)
    oidc.start_session(app, client, ann)
    saml_flow.start(client, sp)
    with statements(app) as sso:
        resp, _ = saml_flow.start(client, sp)
    assert posted_form(resp)[0] == sp.acs_url
    assert len(sso) == 9 and not [s for s in sso if "merchants" in s]
