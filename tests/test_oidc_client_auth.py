"""Client authentication at the token endpoint (basic, post, private_key_jwt, none)
and the client-credentials grant."""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tests.support import oidc
from tests.support.oidc import ISSUER

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def cc(client: FlaskClient, rp: oidc.RP, **data: Any) -> Any:
    return client.post("/token", data={"grant_type": "client_credentials", **data},
                       headers=rp.basic())  # fmt: skip


def test_client_secret_basic(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app, grant_types=["client_credentials"])
    assert cc(client, rp).status_code == 200


def test_wrong_secret_is_401_with_www_authenticate(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app, grant_types=["client_credentials"])
    bad = oidc.RP(rp.client_id, "wrong")
    resp = cc(client, bad)
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "invalid_client"
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


def test_basic_header_and_other_body_client_id_refused(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app, grant_types=["client_credentials"])
    other = oidc.register(app, grant_types=["client_credentials"], name="Other")
    resp = cc(client, rp, client_id=other.client_id)
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_client"


def test_client_secret_post(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app, grant_types=["client_credentials"], auth_method="client_secret_post")
    data = {"grant_type": "client_credentials", "client_id": rp.client_id,
            "client_secret": rp.secret}  # fmt: skip
    assert client.post("/token", data=data).status_code == 200
    # Registered for post: basic is refused.
    assert cc(client, rp).status_code == 401


def test_basic_client_cannot_use_post(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app, grant_types=["client_credentials"])
    data = {"grant_type": "client_credentials", "client_id": rp.client_id,
            "client_secret": rp.secret}  # fmt: skip
    assert client.post("/token", data=data).get_json()["error"] == "invalid_client"


def test_stored_secret_is_keyed_hash(app: Flask) -> None:
    from idp.release import clients

    rp = oidc.register(app)
    with app.app_context():
        row = clients.get(rp.client_id)
        assert row is not None and row.secret_hash and rp.secret
        assert rp.secret not in row.secret_hash and len(row.secret_hash) == 64


def _key_client(app: Flask, alg: str) -> tuple[oidc.RP, ECKey | RSAKey]:
    key: ECKey | RSAKey
    if alg == "ES256":
        key = ECKey.generate_key("P-256", private=True, auto_kid=True)
    else:
        key = RSAKey.generate_key(2048, private=True, auto_kid=True)
    jwks = {"keys": [key.as_dict(private=False)]}
    rp = oidc.register(app, grant_types=["client_credentials", "authorization_code"],
                       auth_method="private_key_jwt", jwks=jwks)  # fmt: skip
    return rp, key


def _assertion(rp: oidc.RP, key: ECKey | RSAKey, alg: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": rp.client_id, "sub": rp.client_id, "aud": f"{ISSUER}/token",
            "iat": now, "exp": now + 60, "jti": secrets.token_hex(8)}  # fmt: skip
    body.update(claims)
    return jwt.encode({"alg": alg, "kid": key.kid}, body, key, algorithms=[alg])


def _jwt_cc(client: FlaskClient, rp: oidc.RP, assertion: str) -> Any:
    return client.post("/token", data={
        "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion})  # fmt: skip


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_private_key_jwt(app: Flask, client: FlaskClient, alg: str) -> None:
    rp, key = _key_client(app, alg)
    assert _jwt_cc(client, rp, _assertion(rp, key, alg)).status_code == 200
    # The issuer is an accepted audience too (RFC 7523 §3).
    assert _jwt_cc(client, rp, _assertion(rp, key, alg, aud=ISSUER)).status_code == 200


def test_private_key_jwt_jti_single_use(app: Flask, client: FlaskClient) -> None:
    rp, key = _key_client(app, "ES256")
    assertion = _assertion(rp, key, "ES256")
    assert _jwt_cc(client, rp, assertion).status_code == 200
    again = _jwt_cc(client, rp, assertion)
    assert again.status_code in (400, 401) and again.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "https://elsewhere.example/token"},
        {"exp": int(time.time()) - 600},
        {"exp": int(time.time()) + 7200},
        {"iss": "someone-else"},
        {"jti": None},
    ],
)
def test_private_key_jwt_bad_claims(app: Flask, client: FlaskClient, claims: dict[str, Any]) -> None:  # noqa: E501
    rp, key = _key_client(app, "ES256")
    body = {k: v for k, v in claims.items() if v is not None}
    assertion = _assertion(rp, key, "ES256", **body)
    if claims.get("jti", "") is None:
        now = int(time.time())
        assertion = jwt.encode({"alg": "ES256", "kid": key.kid},
                               {"iss": rp.client_id, "sub": rp.client_id,
                                "aud": f"{ISSUER}/token", "exp": now + 60}, key)  # fmt: skip
    resp = _jwt_cc(client, rp, assertion)
    assert resp.status_code in (400, 401) and resp.get_json()["error"] == "invalid_client"


def test_private_key_jwt_foreign_key_refused(app: Flask, client: FlaskClient) -> None:
    rp, _ = _key_client(app, "ES256")
    stranger = ECKey.generate_key("P-256", private=True, auto_kid=True)
    resp = _jwt_cc(client, rp, _assertion(rp, stranger, "ES256"))
    assert resp.get_json()["error"] == "invalid_client"


def test_private_key_jwt_hmac_with_public_key_refused(app: Flask, client: FlaskClient) -> None:
    """Algorithm confusion: HS256 keyed with the client's public RSA key."""
    rp, key = _key_client(app, "RS256")
    now = int(time.time())
    claims = {"iss": rp.client_id, "sub": rp.client_id, "aud": f"{ISSUER}/token",
              "exp": now + 60, "jti": "x1"}  # fmt: skip
    assertion = oidc.hs256_token({"alg": "HS256", "kid": key.kid}, claims,
                                 key.as_pem(private=False))  # fmt: skip
    assert _jwt_cc(client, rp, assertion).get_json()["error"] == "invalid_client"


def test_secret_client_cannot_use_assertion(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app, grant_types=["client_credentials"])
    key = ECKey.generate_key("P-256", private=True, auto_kid=True)
    resp = _jwt_cc(client, rp, _assertion(rp, key, "ES256"))
    assert resp.get_json()["error"] == "invalid_client"


def test_public_client_auth_none_needs_pkce_verifier(app: Flask, client: FlaskClient) -> None:
    account = oidc.make_account(app)
    rp = oidc.register(app, ["http://127.0.0.1/cb"], public=True)
    si = oidc.sign_in(app, client, rp, account)
    no_verifier = oidc.exchange(client, rp, si, code_verifier=None)
    assert no_verifier.status_code == 400


def test_public_client_cannot_use_client_credentials(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app, ["http://127.0.0.1/cb"], public=True)
    resp = client.post("/token", data={"grant_type": "client_credentials",
                                       "client_id": rp.client_id})  # fmt: skip
    assert resp.status_code in (400, 401)
    assert resp.get_json()["error"] in ("invalid_client", "unauthorized_client")


def test_client_credentials_token(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app, grant_types=["client_credentials"], scope="openid profile email")
    body = cc(client, rp).get_json()
    assert "id_token" not in body and "refresh_token" not in body
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    token = oidc.verify_jwt(client, body["access_token"])
    assert token.header["typ"] == "at+jwt"
    assert token.claims["sub"] == rp.client_id == token.claims["client_id"]
    assert token.claims["iss"] == ISSUER
    assert token.claims["scope"] == "profile email"
    assert "gid" not in token.claims
    narrowed = cc(client, rp, scope="email phone").get_json()
    assert narrowed["scope"] == "email"


def test_client_credentials_not_allowed_without_grant_type(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app)
    assert cc(client, rp).get_json()["error"] == "unauthorized_client"


def test_no_implicit_or_password_grant(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app, grant_types=["client_credentials", "authorization_code"])
    for grant in ("password", "implicit", "urn:ietf:params:oauth:grant-type:device_code", ""):
        resp = client.post("/token", data={"grant_type": grant, "username": "a", "password": "b"},
                           headers=rp.basic())  # fmt: skip
        assert resp.status_code == 400
        assert resp.get_json()["error"] == "unsupported_grant_type"


def test_deleted_client_stops_working(app: Flask, client: FlaskClient) -> None:
    from idp.release import clients

    rp = oidc.register(app, grant_types=["client_credentials"])
    token = cc(client, rp).get_json()["access_token"]
    with app.app_context():
        assert clients.delete(rp.client_id, actor="test")
    assert cc(client, rp).status_code == 401
    other = oidc.register(app, grant_types=["client_credentials"])
    resp = client.post("/introspect", data={"token": token}, headers=other.basic())
    assert resp.get_json() == {"active": False}


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic !!!notbase64"},
        {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()},
        {"Authorization": "Basic"},
        {"Authorization": "Bearer x"},
        {"Authorization": "Basic " + "A" * 10000},
    ],
)
def test_malformed_client_credentials_never_500(client: FlaskClient, headers: dict[str, str]) -> None:  # noqa: E501
    resp = client.post("/token", data={"grant_type": "client_credentials"}, headers=headers)
    assert resp.status_code in (400, 401)
    assert resp.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "assertion",
    ["", "a.b.c", "x" * 9000, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "....", "\u2603.\u2603.."],
)
def test_malformed_assertions_never_500(client: FlaskClient, assertion: str) -> None:
    resp = client.post("/token", data={"grant_type": "client_credentials",
                                       "client_assertion_type": ASSERTION_TYPE,
                                       "client_assertion": assertion})  # fmt: skip
    assert resp.status_code in (400, 401), resp.get_data(as_text=True)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"grant_type": "authorization_code"},
        {"grant_type": "authorization_code", "code": "x" * 5000},
        {"grant_type": "refresh_token"},
        {"grant_type": "\u2603" * 100},
    ],
)
def test_malformed_token_requests_never_500(app: Flask, client: FlaskClient,
                                            data: dict[str, str]) -> None:  # fmt: skip
    rp = oidc.register(app)
    resp = client.post("/token", data=data, headers=rp.basic())
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert "error" in resp.get_json()
