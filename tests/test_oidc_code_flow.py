"""Authorization code flow end to end, ID token validation, code single use and expiry."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt

from tests.support import oidc
from tests.support.merchants import merchant_id
from tests.support.oidc import ISSUER


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_id_token_validates_against_jwks(app: Flask, client: FlaskClient, alg: str) -> None:
    account = oidc.make_account(app)
    rp = oidc.register(app, id_token_alg=alg)
    si = oidc.sign_in(app, client, rp, account)
    assert si.redirect["state"] == si.state
    resp = oidc.exchange(client, rp, si)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["token_type"] == "Bearer"
    assert resp.headers["Cache-Control"] == "no-store"
    token = oidc.verify_jwt(client, body["id_token"])
    assert token.header["alg"] == alg
    claims = token.claims
    assert claims["iss"] == ISSUER
    assert claims["aud"] == rp.client_id
    assert claims["azp"] == rp.client_id
    assert claims["sub"] == account
    assert claims["nonce"] == si.nonce
    now = time.time()
    assert claims["iat"] <= now + 1 and claims["exp"] > now
    assert claims["exp"] - claims["iat"] <= 3600
    assert isinstance(claims["auth_time"], int)
    assert claims["amr"] == ["otp"]
    assert claims["acr"] == "urn:unitgate:acr:email-otp"
    assert "at_hash" in claims
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": rp.client_id},
        nonce={"essential": True, "value": si.nonce},
    ).validate(claims)


def test_sub_is_stable_across_sign_ins(app: Flask, client: FlaskClient) -> None:
    account = oidc.make_account(app)
    rp = oidc.register(app)
    subs = []
    for _ in range(2):
        body = oidc.exchange(client, rp, oidc.sign_in(app, client, rp, account)).get_json()
        subs.append(oidc.verify_jwt(client, body["id_token"]).claims["sub"])
    assert subs == [account, account]


def test_access_token_is_rfc9068_jwt(app: Flask, client: FlaskClient) -> None:
    account = oidc.make_account(app)
    rp = oidc.register(app)
    body = oidc.exchange(client, rp, oidc.sign_in(app, client, rp, account)).get_json()
    token = oidc.verify_jwt(client, body["access_token"])
    assert token.header["typ"] == "at+jwt"
    c = token.claims
    assert c["iss"] == ISSUER and c["sub"] == account and c["aud"] == rp.client_id
    assert c["client_id"] == rp.client_id and c["scope"] == "openid profile email"
    assert {"exp", "iat", "jti", "auth_time", "gid"} <= set(c)


def test_code_is_single_use_and_replay_revokes_tokens(app: Flask, client: FlaskClient) -> None:
    account = oidc.make_account(app)
    rp = oidc.register(app)
    si = oidc.sign_in(app, client, rp, account)
    first = oidc.exchange(client, rp, si).get_json()
    assert oidc.userinfo(client, first["access_token"]).status_code == 200
    second = oidc.exchange(client, rp, si)
    assert second.status_code == 400
    assert second.get_json()["error"] == "invalid_grant"
    # Everything the first redemption produced is revoked now.
    assert oidc.userinfo(client, first["access_token"]).status_code == 401
    again = oidc.refresh(client, rp, first["refresh_token"])
    assert again.get_json()["error"] == "invalid_grant"


def test_code_bound_to_client(app: Flask, client: FlaskClient) -> None:
    account = oidc.make_account(app)
    rp = oidc.register(app)
    other = oidc.register(app, name="Other shop")
    si = oidc.sign_in(app, client, rp, account)
    resp = oidc.exchange(client, other, si)
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"


def test_code_bound_to_redirect_uri(app: Flask, client: FlaskClient) -> None:
    account = oidc.make_account(app)
    rp = oidc.register(app, ["https://rp.example/cb", "https://rp.example/other"])
    si = oidc.sign_in(app, client, rp, account)
    resp = oidc.exchange(client, rp, si, redirect_uri="https://rp.example/other")
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"


class TestCodeLifetime:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"code_seconds": 1}

    def test_expired_code_is_refused(self, app: Flask, client: FlaskClient) -> None:
        account = oidc.make_account(app)
        rp = oidc.register(app)
        si = oidc.sign_in(app, client, rp, account)
        time.sleep(2.2)
        resp = oidc.exchange(client, rp, si)
        assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"


class TestCodeLifetimeCap:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"code_seconds": 600}

    def test_code_lifetime_never_exceeds_60_seconds(self, app: Flask) -> None:
        from idp.oidc import codes

        with app.app_context():
            assert codes.lifetime() == 60


def test_sign_in_is_recorded(app: Flask, client: FlaskClient) -> None:
    from idp.store import signins_repo

    account = oidc.make_account(app)
    rp = oidc.register(app)
    oidc.sign_in(app, client, rp, account, scope="openid email")
    with app.app_context():
        rows = signins_repo.for_account(account)
        assert [(r.merchant_id, r.protocol, r.released) for r in rows] == [
            (merchant_id(app, rp.client_id), "oidc", ["sub", "email", "email_verified"])
        ]


def test_parallel_redemptions_of_one_code(app: Flask, client: FlaskClient) -> None:
    """Two simultaneous exchanges of one code: exactly one gets tokens."""
    import threading

    account = oidc.make_account(app)
    rp = oidc.register(app)
    si = oidc.sign_in(app, client, rp, account)
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def redeem() -> None:
        c = app.test_client()
        barrier.wait()
        statuses.append(oidc.exchange(c, rp, si).status_code)

    threads = [threading.Thread(target=redeem) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 400, 400, 400]
