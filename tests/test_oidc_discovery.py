"""Discovery metadata, JWKS, CORS on the public endpoints, and key rotation overlap
for tokens we issued."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from idp.store.unit_of_work import atomic
from tests.support import oidc
from tests.support.oidc import ISSUER


def test_discovery_issuer_and_endpoints(client: FlaskClient) -> None:
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["issuer"] == ISSUER
    for name, path in {
        "authorization_endpoint": "/authorize",
        "token_endpoint": "/token",
        "userinfo_endpoint": "/userinfo",
        "jwks_uri": "/jwks",
        "end_session_endpoint": "/logout",
        "introspection_endpoint": "/introspect",
        "revocation_endpoint": "/revoke",
    }.items():
        assert meta[name] == ISSUER + path
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["grant_types_supported"]) == {
        "authorization_code", "refresh_token", "client_credentials"}  # fmt: skip
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "private_key_jwt", "none"}  # fmt: skip
    assert meta["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]
    assert set(meta["scopes_supported"]) >= {
        "openid", "profile", "email", "phone", "wallet", "org", "offline_access"}  # fmt: skip
    assert {"sub", "email", "cost_centre", "org_id", "roles"} <= set(meta["claims_supported"])
    assert meta["request_parameter_supported"] is False
    assert "none" not in meta["id_token_signing_alg_values_supported"]


def test_endpoints_come_from_issuer_not_host(client: FlaskClient) -> None:
    headers = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    meta = client.get("/.well-known/openid-configuration", headers=headers).get_json()
    assert meta["issuer"] == ISSUER
    assert all("evil" not in str(v) for v in meta.values())


def test_rfc8414_metadata_matches(client: FlaskClient) -> None:
    a = client.get("/.well-known/openid-configuration").get_json()
    b = client.get("/.well-known/oauth-authorization-server").get_json()
    assert a == b


def test_jwks_public_only_with_both_algs(client: FlaskClient) -> None:
    keys = client.get("/jwks").get_json()["keys"]
    assert {k["alg"] for k in keys} >= {"ES256", "RS256"}
    for k in keys:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(k)
        assert k["use"] == "sig" and k["kid"]


@pytest.mark.parametrize(
    "path", ["/.well-known/openid-configuration", "/jwks"]
)
def test_cors_on_public_endpoints(client: FlaskClient, path: str) -> None:
    resp = client.get(path, headers={"Origin": "https://spa.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


def test_cors_on_token_endpoint(client: FlaskClient) -> None:
    pre = client.options("/token", headers={"Origin": "https://spa.example",
                                            "Access-Control-Request-Method": "POST"})  # fmt: skip
    assert pre.headers["Access-Control-Allow-Origin"] == "*"
    resp = client.post("/token", data={}, headers={"Origin": "https://spa.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


@pytest.fixture
def restore_keys(app: Flask) -> Iterator[None]:
    """Signing keys persist between tests: undo this test's rotation afterwards."""
    from idp.store.db import db

    with app.app_context():
        before = dict(db.session.execute(text("SELECT kid, state FROM signing_keys")).all())
    yield
    with app.app_context(), db.engine.begin() as conn:
        for (kid,) in conn.execute(text("SELECT kid FROM signing_keys")).all():
            if kid not in before:
                conn.execute(text("DELETE FROM signing_keys WHERE kid = :k"), {"k": kid})
        for kid, state in before.items():
            conn.execute(text("UPDATE signing_keys SET state = :s, retired_at = NULL "
                              "WHERE kid = :k"), {"s": state, "k": kid})  # fmt: skip


def _rotate(app: Flask, alg: str = "ES256") -> str:
    from idp.crypto import keyring as keyring_mod
    from idp.services import keyring, services
    from idp.store import keys_repo

    with app.app_context():
        row = keyring_mod.generate(alg, services().sealer)
        with atomic():
            keys_repo.add_active(row)
        keyring().refresh(force=True)
        return row.kid


def test_key_rotation_overlap(app: Flask, client: FlaskClient, restore_keys: None) -> None:
    from idp.services import keyring
    from idp.store import keys_repo

    account = oidc.make_account(app)
    rp = oidc.register(app)
    old = oidc.exchange(client, rp, oidc.sign_in(app, client, rp, account)).get_json()
    old_kid = oidc.verify_jwt(client, old["access_token"]).header["kid"]

    new_kid = _rotate(app)
    kids = {k["kid"] for k in client.get("/jwks").get_json()["keys"]}
    assert {old_kid, new_kid} <= kids
    # Tokens signed with the old key keep verifying during the overlap.
    assert oidc.userinfo(client, old["access_token"]).status_code == 200
    oidc.verify_jwt(client, old["id_token"])
    # New tokens use the new key.
    new = oidc.exchange(client, rp, oidc.sign_in(app, client, rp, account)).get_json()
    assert oidc.verify_jwt(client, new["access_token"]).header["kid"] == new_kid
    assert oidc.verify_jwt(client, new["id_token"]).header["kid"] == new_kid

    with app.app_context():
        with atomic():
            assert keys_repo.retire(old_kid) is not None
        keyring().refresh(force=True)
    assert old_kid not in {k["kid"] for k in client.get("/jwks").get_json()["keys"]}
    assert oidc.userinfo(client, old["access_token"]).status_code == 401
    assert oidc.userinfo(client, new["access_token"]).status_code == 200
