"""UserInfo: GET and POST, claims per scope, and the JOSE rules for the bearer token
(algorithm allow-list, no ``none``, ``jku``/``jwk`` ignored, ``crit`` refused, size
cap, wrong ``typ``), revocation, blocked accounts."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey
from joserfc.jws import JWSRegistry
from joserfc.registry import HeaderParameter

from tests.support import oidc


@pytest.fixture
def tokens(app: Flask, client: FlaskClient) -> dict[str, Any]:
    facts = {"cost_centre": "CC-7", "personnel_number": "P-42",
             "extra.badge": "B-9", "extra.other": "x"}
    account = oidc.make_account(app, phone_number="+49 30 1234")
    unit = oidc.make_unit(app, account, roles=["buyer"], fields=("badge",), facts=facts)
    rp = oidc.register(app)
    si = oidc.sign_in(app, client, rp, account, unit_id=unit,
                      scope="openid profile email phone wallet org")  # fmt: skip
    body = oidc.exchange(client, rp, si).get_json()
    return {"account": account, "unit": unit, "rp": rp, **body}


def _claims(client: FlaskClient, token: str) -> jwt.Token:
    return oidc.verify_jwt(client, token)


def test_userinfo_get_and_post(client: FlaskClient, tokens: dict[str, Any]) -> None:
    at = tokens["access_token"]
    got = oidc.userinfo(client, at)
    assert got.status_code == 200 and got.headers["Cache-Control"] == "no-store"
    posted = client.post("/userinfo", data={"access_token": at})
    assert posted.status_code == 200
    posted_header = client.post("/userinfo", headers={"Authorization": f"Bearer {at}"})
    assert got.get_json() == posted.get_json() == posted_header.get_json()


def test_userinfo_claims_per_scope(client: FlaskClient, tokens: dict[str, Any]) -> None:
    info = oidc.userinfo(client, tokens["access_token"]).get_json()
    assert info["sub"] == tokens["account"]
    assert info["email"] == "ann@corp.example" and info["email_verified"] is True
    assert info["name"] == "Ann Example" and info["given_name"] == "Ann"
    assert info["phone_number"] == "+49 30 1234"
    assert info["cost_centre"] == "CC-7" and info["personnel_number"] == "P-42"
    assert info["wallet_fields"] == {"badge": "B-9"}
    assert info["org_id"] == tokens["unit"] and info["org_name"] == "Corp GmbH"
    assert info["roles"] == ["buyer"]


def test_userinfo_releases_only_granted_scopes(app: Flask, client: FlaskClient) -> None:
    account = oidc.make_account(app, phone_number="+49 1")
    oidc.make_unit(app, account, facts={"cost_centre": "CC"})
    rp = oidc.register(app)
    body = oidc.exchange(client, rp, oidc.sign_in(app, client, rp, account,
                                                  scope="openid email")).get_json()  # fmt: skip
    info = oidc.userinfo(client, body["access_token"]).get_json()
    assert set(info) == {"sub", "email", "email_verified"}


def test_missing_token_is_401_with_bearer_challenge(client: FlaskClient) -> None:
    resp = client.get("/userinfo")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_in_header_and_body_refused(client: FlaskClient, tokens: dict[str, Any]) -> None:
    at = tokens["access_token"]
    resp = client.post("/userinfo", data={"access_token": at},
                       headers={"Authorization": f"Bearer {at}"})  # fmt: skip
    assert resp.status_code == 400


def test_id_token_is_not_an_access_token(client: FlaskClient, tokens: dict[str, Any]) -> None:
    resp = oidc.userinfo(client, tokens["id_token"])
    assert resp.status_code == 401 and 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_alg_none_refused(client: FlaskClient, tokens: dict[str, Any]) -> None:
    real = _claims(client, tokens["access_token"])
    forged = oidc.raw_jws({"alg": "none", "typ": "at+jwt", "kid": real.header["kid"]},
                          real.claims)  # fmt: skip
    assert oidc.userinfo(client, forged).status_code == 401


def test_hs256_with_our_public_key_refused(client: FlaskClient, tokens: dict[str, Any]) -> None:
    real = _claims(client, tokens["access_token"])
    pem = oidc.served_keys(client).get_by_kid(real.header["kid"]).as_pem(private=False)
    forged = oidc.hs256_token({"alg": "HS256", "typ": "at+jwt", "kid": real.header["kid"]},
                              real.claims, pem)  # fmt: skip
    assert oidc.userinfo(client, forged).status_code == 401


@pytest.mark.parametrize("header_name", ["jku", "jwk", "x5u"])
def test_embedded_or_remote_keys_ignored(
    client: FlaskClient, tokens: dict[str, Any], header_name: str
) -> None:
    """A token signed with the attacker's key, naming that key in jku/jwk/x5u."""
    real = _claims(client, tokens["access_token"])
    attacker = ECKey.generate_key("P-256", private=True, auto_kid=True)
    header: dict[str, Any] = {"alg": "ES256", "typ": "at+jwt", "kid": attacker.kid}
    header[header_name] = (
        attacker.as_dict(private=False) if header_name == "jwk" else "https://evil.example/jwks"
    )
    forged = jwt.encode(header, real.claims, attacker, algorithms=["ES256"])
    assert oidc.userinfo(client, forged).status_code == 401
    # Even under our own kid the attacker's signature does not verify.
    header["kid"] = real.header["kid"]
    forged = jwt.encode(header, real.claims, attacker, algorithms=["ES256"])
    assert oidc.userinfo(client, forged).status_code == 401


def test_unknown_crit_refused(app: Flask, client: FlaskClient, tokens: dict[str, Any]) -> None:
    from idp.services import keyring

    real = _claims(client, tokens["access_token"])
    with app.app_context():
        key = keyring().get(real.header["kid"])
        assert key is not None
        header = {"alg": "ES256", "typ": "at+jwt", "kid": key.kid, "crit": ["exp"], "exp": 1}
        registry = JWSRegistry(
            header_registry={"exp": HeaderParameter("extension", "int")}, algorithms=["ES256"]
        )
        signed = jwt.encode(header, real.claims, key.key, registry=registry)
    assert oidc.userinfo(client, signed).status_code == 401


def test_oversized_token_refused(app: Flask, client: FlaskClient, tokens: dict[str, Any]) -> None:
    from idp.services import keyring

    real = _claims(client, tokens["access_token"])
    with app.app_context():
        key = keyring().get(real.header["kid"])
        assert key is not None
        big = {**real.claims, "pad": "x" * 9000}
        signed = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": key.kid}, big, key.key,
                            algorithms=["ES256"])  # fmt: skip
    assert oidc.userinfo(client, signed).status_code == 401


def test_expired_and_foreign_issuer_refused(app: Flask, client: FlaskClient,
                                            tokens: dict[str, Any]) -> None:  # fmt: skip
    from idp.services import keyring

    real = _claims(client, tokens["access_token"])
    with app.app_context():
        key = keyring().get(real.header["kid"])
        assert key is not None
        for change in ({"exp": int(time.time()) - 5}, {"iss": "https://other.example"},
                       {"iat": int(time.time()) + 3600}):  # fmt: skip
            claims = {**real.claims, **change}
            signed = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": key.kid}, claims,
                                key.key, algorithms=["ES256"])  # fmt: skip
            with app.test_client() as c:
                assert oidc.userinfo(c, signed).status_code == 401, change


@pytest.mark.parametrize(
    "junk", ["", "x", "a.b.c", "....", "e30.e30.e30", "\u2603", "Bearer", "a" * 20000]
)
def test_garbage_tokens_never_500(client: FlaskClient, junk: str) -> None:
    resp = client.get("/userinfo", headers={"Authorization": f"Bearer {junk}"})
    assert resp.status_code in (400, 401)


def test_blocked_account_token_refused(app: Flask, client: FlaskClient,
                                       tokens: dict[str, Any]) -> None:  # fmt: skip
    oidc.set_status(app, tokens["account"], "blocked")
    assert oidc.userinfo(client, tokens["access_token"]).status_code == 401


def test_client_credentials_token_has_no_userinfo(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app, grant_types=["client_credentials"])
    at = client.post("/token", data={"grant_type": "client_credentials"},
                     headers=rp.basic()).get_json()["access_token"]  # fmt: skip
    assert oidc.userinfo(client, at).status_code == 401


def test_userinfo_cors(client: FlaskClient, tokens: dict[str, Any]) -> None:
    resp = client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}",
                                            "Origin": "https://spa.example"})  # fmt: skip
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    pre = client.options("/userinfo", headers={"Origin": "https://spa.example",
                                               "Access-Control-Request-Method": "GET"})  # fmt: skip
    assert pre.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]


def test_session_sign_in_keeps_the_unit_chosen_last_time(app: Flask, client: FlaskClient) -> None:
    account = oidc.make_account(app)
    oidc.make_unit(app, account, name="Alpha AG", roles=["a"])
    beta = oidc.make_unit(app, account, name="Beta AG", roles=["b"])
    rp = oidc.register(app)
    first = oidc.sign_in(app, client, rp, account, unit_id=beta, scope="openid org")
    oidc.exchange(client, rp, first)
    oidc.start_session(app, client, account)
    verifier, challenge = oidc.pkce()
    params = oidc.auth_params(rp, scope="openid org", code_challenge=challenge,
                              code_challenge_method="S256")  # fmt: skip
    resp = client.get("/authorize", query_string=params)
    code = oidc.query(resp)["code"]  # no login pages: session and consent cover it
    si = oidc.SignIn(code, params["state"], params["nonce"], verifier)
    info = oidc.userinfo(client, oidc.exchange(client, rp, si).get_json()["access_token"])
    assert info.get_json()["org_id"] == beta and info.get_json()["roles"] == ["b"]
