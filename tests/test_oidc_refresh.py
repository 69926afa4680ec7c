"""Refresh tokens: rotation, reuse revokes the family, client binding, absolute
lifetime, account blocking; PKCE at the token endpoint."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support import oidc


@pytest.fixture
def signed_in(app: Flask, client: FlaskClient) -> tuple[oidc.RP, str, dict[str, str]]:
    account = oidc.make_account(app)
    rp = oidc.register(app)
    body = oidc.exchange(client, rp, oidc.sign_in(app, client, rp, account)).get_json()
    assert "refresh_token" in body
    return rp, account, body


def test_refresh_rotates(
    client: FlaskClient, signed_in: tuple[oidc.RP, str, dict[str, str]]
) -> None:
    rp, _, first = signed_in
    resp = oidc.refresh(client, rp, first["refresh_token"])
    assert resp.status_code == 200, resp.get_json()
    second = resp.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert oidc.userinfo(client, second["access_token"]).status_code == 200
    third = oidc.refresh(client, rp, second["refresh_token"])
    assert third.status_code == 200


def test_refresh_returns_an_id_token_of_the_original_authentication(
    client: FlaskClient, signed_in: tuple[oidc.RP, str, dict[str, str]]
) -> None:
    rp, account, first = signed_in
    original = oidc.verify_jwt(client, first["id_token"]).claims
    second = oidc.refresh(client, rp, first["refresh_token"]).get_json()
    claims = oidc.verify_jwt(client, second["id_token"]).claims
    # OIDC Core §12.2: same iss, sub, aud/azp and auth_time; a new iat; no nonce
    for name in ("iss", "sub", "aud", "azp", "auth_time", "acr", "amr", "sid"):
        assert claims.get(name) == original.get(name), name
    assert claims["sub"] == account and "nonce" in original and "nonce" not in claims
    assert claims["iat"] >= original["iat"]
    assert claims["at_hash"] != original["at_hash"]  # bound to the new access token
    # a narrowed scope releases only what it names
    assert "email" in claims
    narrow = oidc.refresh(client, rp, second["refresh_token"], scope="openid").get_json()
    assert "email" not in oidc.verify_jwt(client, narrow["id_token"]).claims


def test_reuse_of_used_refresh_token_revokes_family(
    client: FlaskClient, signed_in: tuple[oidc.RP, str, dict[str, str]]
) -> None:
    rp, _, first = signed_in
    second = oidc.refresh(client, rp, first["refresh_token"]).get_json()
    reuse = oidc.refresh(client, rp, first["refresh_token"])
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant"
    # The whole family is gone: the rotated refresh token and every access token.
    assert oidc.refresh(client, rp, second["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert oidc.userinfo(client, second["access_token"]).status_code == 401
    assert oidc.userinfo(client, first["access_token"]).status_code == 401


def test_refresh_token_bound_to_client(
    app: Flask, client: FlaskClient, signed_in: tuple[oidc.RP, str, dict[str, str]]
) -> None:
    rp, _, first = signed_in
    other = oidc.register(app, name="Other")
    resp = oidc.refresh(client, other, first["refresh_token"])
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"
    # The rightful client can still use it: a foreign attempt does not burn it.
    assert oidc.refresh(client, rp, first["refresh_token"]).status_code == 200


def test_refresh_scope_can_narrow_not_widen(
    client: FlaskClient, signed_in: tuple[oidc.RP, str, dict[str, str]]
) -> None:
    rp, _, first = signed_in
    wide = oidc.refresh(client, rp, first["refresh_token"], scope="openid phone")
    assert wide.get_json()["error"] == "invalid_scope"
    narrow = oidc.refresh(client, rp, first["refresh_token"], scope="openid email")
    assert narrow.status_code == 200 and narrow.get_json()["scope"] == "openid email"


def test_blocked_account_cannot_refresh(
    app: Flask, client: FlaskClient, signed_in: tuple[oidc.RP, str, dict[str, str]]
) -> None:
    rp, account, first = signed_in
    oidc.set_status(app, account, "blocked")
    assert oidc.refresh(client, rp, first["refresh_token"]).status_code == 400


def test_revoke_for_account_ends_refresh_and_access(
    app: Flask, client: FlaskClient, signed_in: tuple[oidc.RP, str, dict[str, str]]
) -> None:
    from idp.store import grants_repo
    from idp.store.unit_of_work import atomic

    rp, account, first = signed_in
    with app.app_context(), atomic():
        assert grants_repo.revoke_for_account(account) == 1
    assert oidc.refresh(client, rp, first["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert oidc.userinfo(client, first["access_token"]).status_code == 401


def test_no_refresh_token_without_refresh_grant_type(app: Flask, client: FlaskClient) -> None:
    account = oidc.make_account(app)
    rp = oidc.register(app, grant_types=["authorization_code"])
    body = oidc.exchange(client, rp, oidc.sign_in(app, client, rp, account)).get_json()
    assert "access_token" in body and "refresh_token" not in body


def test_garbage_refresh_tokens(
    client: FlaskClient, signed_in: tuple[oidc.RP, str, dict[str, str]]
) -> None:
    rp, _, _ = signed_in
    for junk in ("", "x", "a" * 5000, "a.b.c", "\u2603"):
        resp = oidc.refresh(client, rp, junk)
        assert resp.status_code == 400, junk


class TestAbsoluteLifetime:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"refresh_token_days": 0}

    def test_family_expires_absolutely(
        self, client: FlaskClient, signed_in: tuple[oidc.RP, str, dict[str, str]]
    ) -> None:
        rp, _, first = signed_in
        resp = oidc.refresh(client, rp, first["refresh_token"])
        assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"


class TestPkceAtTokenEndpoint:
    def test_public_client_round_trip(self, app: Flask, client: FlaskClient) -> None:
        account = oidc.make_account(app)
        rp = oidc.register(app, ["http://127.0.0.1/cb"], public=True)
        si = oidc.sign_in(app, client, rp, account)
        resp = oidc.exchange(client, rp, si)
        assert resp.status_code == 200, resp.get_json()
        rt = resp.get_json()["refresh_token"]
        assert oidc.refresh(client, rp, rt).status_code == 200

    def test_wrong_verifier_refused(self, app: Flask, client: FlaskClient) -> None:
        account = oidc.make_account(app)
        rp = oidc.register(app)
        si = oidc.sign_in(app, client, rp, account)
        other, _ = oidc.pkce()
        resp = oidc.exchange(client, rp, si, code_verifier=other)
        assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"

    def test_missing_verifier_refused(self, app: Flask, client: FlaskClient) -> None:
        account = oidc.make_account(app)
        rp = oidc.register(app)
        si = oidc.sign_in(app, client, rp, account)
        si.verifier = None
        resp = oidc.exchange(client, rp, si)
        assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"

    def test_verifier_without_challenge_is_downgrade(self, app: Flask, client: FlaskClient) -> None:
        account = oidc.make_account(app)
        rp = oidc.register(app)
        si = oidc.sign_in(app, client, rp, account, use_pkce=False)
        si.verifier, _ = oidc.pkce()
        resp = oidc.exchange(client, rp, si)
        assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"

    def test_confidential_without_pkce_still_works(self, app: Flask, client: FlaskClient) -> None:
        account = oidc.make_account(app)
        rp = oidc.register(app)
        si = oidc.sign_in(app, client, rp, account, use_pkce=False)
        assert oidc.exchange(client, rp, si).status_code == 200
