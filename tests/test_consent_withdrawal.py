"""Withdrawing consent (idp.release.consent.revoke, the dashboard's Withdraw button) takes
back what the merchant holds: its refresh tokens stop and its access tokens turn
inactive at once; other merchants' tokens stay valid."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from idp.release import consent
from tests.support import oidc
from tests.support.merchants import merchant_id


def _tokens(app: Flask, client: FlaskClient, rp: oidc.RP, account_id: str) -> dict[str, Any]:
    si = oidc.sign_in(app, client, rp, account_id)
    resp = oidc.exchange(client, rp, si)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()  # type: ignore[no-any-return]


def _active(client: FlaskClient, rp: oidc.RP, token: str) -> bool:
    resp = client.post("/introspect", data={"token": token}, headers=rp.basic())
    return bool(resp.get_json()["active"])


def test_withdrawing_consent_revokes_that_merchants_tokens(
    app: Flask, client: FlaskClient
) -> None:
    ann = oidc.make_account(app)
    shop = oidc.register(app, grant_types=["authorization_code", "refresh_token"])
    other = oidc.register(app, grant_types=["authorization_code", "refresh_token"])
    at_shop = _tokens(app, client, shop, ann)
    at_other = _tokens(app, client, other, ann)
    assert _active(client, shop, at_shop["access_token"])

    with app.app_context():
        assert consent.revoke(ann, merchant_id(app, shop.client_id)) is True

    assert not _active(client, shop, at_shop["access_token"])
    assert oidc.userinfo(client, at_shop["access_token"]).status_code == 401
    refused = oidc.refresh(client, shop, at_shop["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"

    assert _active(client, other, at_other["access_token"])
    assert oidc.refresh(client, other, at_other["refresh_token"]).status_code == 200
