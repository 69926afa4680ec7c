"""Introspection (RFC 7662) and revocation (RFC 7009)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support import oidc
from tests.support.oidc import ISSUER


@pytest.fixture
def issued(app: Flask, client: FlaskClient) -> dict[str, Any]:
    account = oidc.make_account(app)
    rp = oidc.register(app)
    body = oidc.exchange(client, rp, oidc.sign_in(app, client, rp, account)).get_json()
    return {"rp": rp, "account": account, **body}


def introspect(client: FlaskClient, rp: oidc.RP, token: str, **extra: str) -> Any:
    resp = client.post("/introspect", data={"token": token, **extra}, headers=rp.basic())
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def revoke(client: FlaskClient, rp: oidc.RP, token: str, **extra: str) -> Any:
    return client.post("/revoke", data={"token": token, **extra}, headers=rp.basic())


def test_introspect_access_token(client: FlaskClient, issued: dict[str, Any]) -> None:
    info = introspect(client, issued["rp"], issued["access_token"])
    assert info["active"] is True
    assert info["sub"] == issued["account"] and info["client_id"] == issued["rp"].client_id
    assert info["iss"] == ISSUER and info["scope"] == "openid profile email"
    assert info["token_type"] == "Bearer" and info["exp"] > info["iat"]


def test_introspect_refresh_token(client: FlaskClient, issued: dict[str, Any]) -> None:
    info = introspect(client, issued["rp"], issued["refresh_token"],
                      token_type_hint="refresh_token")  # fmt: skip
    assert info["active"] is True and info["sub"] == issued["account"]
    # A wrong hint only changes the search order (RFC 7662 §2.1).
    wrong_hint = introspect(client, issued["rp"], issued["refresh_token"],
                            token_type_hint="access_token")  # fmt: skip
    assert wrong_hint["active"] is True


def test_introspection_requires_client_authentication(
    client: FlaskClient, issued: dict[str, Any]
) -> None:
    resp = client.post("/introspect", data={"token": issued["access_token"]})
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_client"


def test_public_client_cannot_introspect(app: Flask, client: FlaskClient,
                                         issued: dict[str, Any]) -> None:  # fmt: skip
    public = oidc.register(app, ["http://127.0.0.1/cb"], public=True)
    resp = client.post("/introspect", data={"token": issued["access_token"],
                                            "client_id": public.client_id})  # fmt: skip
    assert resp.status_code in (400, 401) and resp.get_json()["error"] == "invalid_client"


def test_other_clients_tokens_are_inactive(app: Flask, client: FlaskClient,
                                           issued: dict[str, Any]) -> None:  # fmt: skip
    other = oidc.register(app, name="Other")
    assert introspect(client, other, issued["access_token"]) == {"active": False}
    assert introspect(client, other, issued["refresh_token"]) == {"active": False}


def test_unknown_and_garbage_tokens_are_inactive(client: FlaskClient,
                                                 issued: dict[str, Any]) -> None:  # fmt: skip
    for junk in ("nope", "a.b.c", "x" * 20000, "\u2603"):
        assert introspect(client, issued["rp"], junk) == {"active": False}


def test_blocked_account_tokens_are_inactive(app: Flask, client: FlaskClient,
                                             issued: dict[str, Any]) -> None:  # fmt: skip
    oidc.set_status(app, issued["account"], "blocked")
    assert introspect(client, issued["rp"], issued["access_token"]) == {"active": False}
    assert introspect(client, issued["rp"], issued["refresh_token"]) == {"active": False}


def test_revoked_grant_tokens_are_inactive(app: Flask, client: FlaskClient,
                                           issued: dict[str, Any]) -> None:  # fmt: skip
    from idp.store import grants_repo
    from idp.store.unit_of_work import atomic

    with app.app_context(), atomic():
        grants_repo.revoke_for_account(issued["account"])
    assert introspect(client, issued["rp"], issued["access_token"]) == {"active": False}


def test_rotated_refresh_token_is_inactive(client: FlaskClient, issued: dict[str, Any]) -> None:
    rp = issued["rp"]
    oidc.refresh(client, rp, issued["refresh_token"])
    assert introspect(client, rp, issued["refresh_token"]) == {"active": False}


def test_revoke_refresh_token_revokes_family(client: FlaskClient, issued: dict[str, Any]) -> None:
    rp = issued["rp"]
    resp = revoke(client, rp, issued["refresh_token"], token_type_hint="refresh_token")
    assert resp.status_code == 200
    assert oidc.refresh(client, rp, issued["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert oidc.userinfo(client, issued["access_token"]).status_code == 401
    assert introspect(client, rp, issued["access_token"]) == {"active": False}


def test_revoke_access_token_only(client: FlaskClient, issued: dict[str, Any]) -> None:
    rp = issued["rp"]
    assert revoke(client, rp, issued["access_token"]).status_code == 200
    assert oidc.userinfo(client, issued["access_token"]).status_code == 401
    assert introspect(client, rp, issued["access_token"]) == {"active": False}
    # The refresh token lives on and yields a working access token.
    fresh = oidc.refresh(client, rp, issued["refresh_token"]).get_json()
    assert oidc.userinfo(client, fresh["access_token"]).status_code == 200


def test_revoke_unknown_token_is_200(client: FlaskClient, issued: dict[str, Any]) -> None:
    assert revoke(client, issued["rp"], "no-such-token").status_code == 200


def test_revoke_other_clients_token_refused(app: Flask, client: FlaskClient,
                                            issued: dict[str, Any]) -> None:  # fmt: skip
    other = oidc.register(app, name="Other")
    assert revoke(client, other, issued["refresh_token"]).status_code == 400
    assert oidc.refresh(client, issued["rp"], issued["refresh_token"]).status_code == 200


def test_public_client_revokes_own_token(app: Flask, client: FlaskClient) -> None:
    account = oidc.make_account(app)
    rp = oidc.register(app, ["http://127.0.0.1/cb"], public=True)
    body = oidc.exchange(client, rp, oidc.sign_in(app, client, rp, account)).get_json()
    resp = client.post("/revoke", data={"token": body["refresh_token"], "client_id": rp.client_id})
    assert resp.status_code == 200
    assert oidc.refresh(client, rp, body["refresh_token"]).status_code == 400


def test_client_credentials_token_introspection(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app, grant_types=["client_credentials"])
    at = client.post("/token", data={"grant_type": "client_credentials"},
                     headers=rp.basic()).get_json()["access_token"]  # fmt: skip
    info = introspect(client, rp, at)
    assert info["active"] is True and info["sub"] == rp.client_id
    assert revoke(client, rp, at).status_code == 200
    assert introspect(client, rp, at) == {"active": False}


def test_missing_token_parameter(client: FlaskClient, issued: dict[str, Any]) -> None:
    rp = issued["rp"]
    for path in ("/introspect", "/revoke"):
        resp = client.post(path, data={}, headers=rp.basic())
        assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"
