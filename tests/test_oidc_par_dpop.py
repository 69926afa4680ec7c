"""Pushed Authorization Requests (RFC 9126), private_key_jwt at /par (RFC 7523) and
DPoP-bound tokens (RFC 9449): the refusals. The whole flow through an independent
client library is in tests/test_oidc_fapi_rp.py."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from joserfc import jws, jwt
from joserfc.jwk import ECKey

from tests.support import oidc
from tests.support.oidc import ISSUER

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _par(client: FlaskClient, rp: oidc.RP, **extra: Any) -> Any:
    verifier, challenge = oidc.pkce()
    data = oidc.auth_params(rp, code_challenge=challenge, code_challenge_method="S256")
    data.update(extra)
    data = {k: v for k, v in data.items() if v is not None}
    return client.post("/par", data=data, headers=rp.basic()), verifier, data


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def proof(key: ECKey, htm: str, htu: str, token: str | None = None, **claims: Any) -> str:
    body: dict[str, Any] = {"htm": htm, "htu": htu, "iat": int(time.time()),
                            "jti": secrets.token_hex(8)}  # fmt: skip
    if token is not None:
        body["ath"] = _b64(hashlib.sha256(token.encode()).digest())
    body.update(claims)
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    return jwt.encode(header, body, key, algorithms=["ES256"])


def test_discovery_announces_par_and_dpop(client: FlaskClient) -> None:
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["pushed_authorization_request_endpoint"] == f"{ISSUER}/par"
    assert meta["require_pushed_authorization_requests"] is False
    assert "ES256" in meta["dpop_signing_alg_values_supported"]
    assert "none" not in meta["dpop_signing_alg_values_supported"]
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]


def test_pushed_request_signs_in_once(app: Flask, client: FlaskClient) -> None:
    account = oidc.make_account(app)
    rp = oidc.register(app)
    oidc.ensure_login_endpoint(app)
    resp, verifier, _ = _par(client, rp)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert 60 <= body["expires_in"] <= 90
    assert resp.headers["Cache-Control"] == "no-store"
    query = {"client_id": rp.client_id, "request_uri": body["request_uri"]}
    first = client.get("/authorize", query_string=query)
    ix_id = oidc.interaction_id(first)
    oidc.finish(app, ix_id, account)
    back = client.get(f"/authorize/resume/{ix_id}")
    code = oidc.query(back)["code"]
    token = client.post("/token", headers=rp.basic(), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier})  # fmt: skip
    assert token.status_code == 200 and token.get_json()["token_type"] == "Bearer"
    # replayed: the request_uri was used
    again = client.get("/authorize", query_string=query)
    assert again.status_code == 400 and "Location" not in again.headers


def test_request_uri_refusals(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app)
    other = oidc.register(app, name="Other")
    resp, _, _ = _par(client, rp)
    uri = resp.get_json()["request_uri"]
    # another client's id with this request_uri: error page, and the uri stays usable
    wrong = client.get("/authorize", query_string={"client_id": other.client_id,
                                                   "request_uri": uri})  # fmt: skip
    assert wrong.status_code == 400 and "Location" not in wrong.headers
    # mixing parameters with request_uri (RFC 9126 §4)
    mixed = client.get("/authorize", query_string={
        "client_id": rp.client_id, "request_uri": uri, "scope": "openid email"})  # fmt: skip
    assert mixed.status_code == 400 and "Location" not in mixed.headers
    # an unknown or foreign request_uri
    for bogus in ("urn:ietf:params:oauth:request_uri:nope", "https://rp.example/req"):
        r = client.get("/authorize", query_string={"client_id": rp.client_id,
                                                   "request_uri": bogus})  # fmt: skip
        assert r.status_code == 400 and "Location" not in r.headers
    ok = client.get("/authorize", query_string={"client_id": rp.client_id, "request_uri": uri})
    assert ok.status_code == 303


def test_request_uri_expires(app: Flask, client: FlaskClient, monkeypatch: Any) -> None:
    from idp.oidc import par

    rp = oidc.register(app)
    monkeypatch.setattr(par, "LIFETIME", 1)
    resp, _, _ = _par(client, rp)
    uri = resp.get_json()["request_uri"]
    time.sleep(2.2)
    late = client.get("/authorize", query_string={"client_id": rp.client_id, "request_uri": uri})
    assert late.status_code == 400 and "expired" in late.get_data(as_text=True)


def test_par_validates_like_authorize(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"scope": "email"}, "invalid_scope"),
        ({"request_uri": "urn:x"}, "invalid_request"),
        ({"request": "e30.e30."}, "request_not_supported"),
        ({"claims": "not json"}, "invalid_request"),
    ]
    for extra, error in cases:
        resp, _, _ = _par(client, rp, **extra)
        assert resp.status_code == 400, (extra, resp.get_data(as_text=True))
        assert resp.get_json().get("error") == error, (extra, resp.get_data(as_text=True))
    # client authentication is required
    unauth = client.post("/par", data=oidc.auth_params(rp))
    assert unauth.status_code == 401 and unauth.get_json()["error"] == "invalid_client"
    other = oidc.register(app, name="Other")
    named_other = client.post("/par", data=oidc.auth_params(other), headers=rp.basic())
    assert named_other.get_json()["error"] == "invalid_client"


def _key_rp(app: Flask) -> tuple[oidc.RP, ECKey]:
    key = ECKey.generate_key("P-256", private=True, auto_kid=True)
    rp = oidc.register(app, auth_method="private_key_jwt",
                       jwks={"keys": [key.as_dict(private=False)]})  # fmt: skip
    return rp, key


def _assertion(rp: oidc.RP, key: ECKey, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": rp.client_id, "sub": rp.client_id, "aud": ISSUER, "iat": now,
            "exp": now + 60, "jti": secrets.token_hex(8), **claims}  # fmt: skip
    return jwt.encode({"alg": "ES256", "kid": key.kid}, body, key, algorithms=["ES256"])


def _par_jwt(client: FlaskClient, rp: oidc.RP, assertion: str) -> Any:
    _, challenge = oidc.pkce()
    data = oidc.auth_params(rp, code_challenge=challenge, code_challenge_method="S256")
    data.update(client_assertion_type=ASSERTION_TYPE, client_assertion=assertion)
    return client.post("/par", data=data)


def test_private_key_jwt_at_par(app: Flask, client: FlaskClient) -> None:
    rp, key = _key_rp(app)
    good = _assertion(rp, key)
    assert _par_jwt(client, rp, good).status_code == 201
    # replayed jti
    assert _par_jwt(client, rp, good).get_json()["error"] == "invalid_client"
    # wrong audience
    bad_aud = _assertion(rp, key, aud="https://elsewhere.example/token")
    assert _par_jwt(client, rp, bad_aud).get_json()["error"] == "invalid_client"
    # living longer than five minutes
    too_long = _assertion(rp, key, exp=int(time.time()) + 600)
    assert _par_jwt(client, rp, too_long).get_json()["error"] == "invalid_client"
    # alg none
    now = int(time.time())
    claims = {"iss": rp.client_id, "sub": rp.client_id, "aud": ISSUER, "iat": now,
              "exp": now + 60, "jti": secrets.token_hex(8)}  # fmt: skip
    none = oidc.raw_jws({"alg": "none"}, claims)
    assert _par_jwt(client, rp, none).get_json()["error"] == "invalid_client"
    # HS256 keyed with the registered public key's JSON (algorithm confusion)
    public = key.as_dict(private=False)
    hs = oidc.hs256_token({"alg": "HS256", "kid": key.kid}, claims,
                          str(public).encode())  # fmt: skip
    assert _par_jwt(client, rp, hs).get_json()["error"] == "invalid_client"


def _dpop_sign_in(app: Flask, client: FlaskClient, key: ECKey) -> tuple[oidc.RP, dict[str, Any]]:
    account = oidc.make_account(app)
    rp = oidc.register(app)
    si = oidc.sign_in(app, client, rp, account)
    headers = {**rp.basic(), "DPoP": proof(key, "POST", f"{ISSUER}/token")}
    resp = client.post("/token", headers=headers, data={
        "grant_type": "authorization_code", "code": si.code, "redirect_uri": rp.redirect_uri,
        "code_verifier": si.verifier})  # fmt: skip
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return rp, resp.get_json()


def test_dpop_bound_token(app: Flask, client: FlaskClient) -> None:
    key = ECKey.generate_key("P-256", private=True)
    rp, tokens = _dpop_sign_in(app, client, key)
    assert tokens["token_type"] == "DPoP"
    access = tokens["access_token"]
    claims = oidc.verify_jwt(client, access).claims
    assert claims["cnf"] == {"jkt": key.thumbprint()}
    # introspection reports the binding
    seen = client.post("/introspect", data={"token": access}, headers=rp.basic()).get_json()
    assert seen["cnf"] == {"jkt": key.thumbprint()} and seen["token_type"] == "DPoP"
    url = f"{ISSUER}/userinfo"
    ok = client.get("/userinfo", headers={"Authorization": f"DPoP {access}",
                                          "DPoP": proof(key, "GET", url, access)})  # fmt: skip
    assert ok.status_code == 200 and ok.get_json()["sub"]
    # presented as Bearer: refused
    bearer = oidc.userinfo(client, access)
    assert bearer.status_code == 401 and bearer.get_json()["error"] == "invalid_token"
    assert any(v.startswith("DPoP") for v in bearer.headers.getlist("WWW-Authenticate"))
    # no ath
    no_ath = client.get("/userinfo", headers={"Authorization": f"DPoP {access}",
                                              "DPoP": proof(key, "GET", url)})  # fmt: skip
    assert no_ath.status_code == 401 and no_ath.get_json()["error"] == "invalid_dpop_proof"
    # replayed proof
    once = proof(key, "GET", url, access)
    headers = {"Authorization": f"DPoP {access}", "DPoP": once}
    assert client.get("/userinfo", headers=headers).status_code == 200
    assert client.get("/userinfo", headers=headers).get_json()["error"] == "invalid_dpop_proof"
    # another key's proof
    thief = ECKey.generate_key("P-256", private=True)
    stolen_proof = proof(thief, "GET", url, access)
    stolen = client.get("/userinfo", headers={"Authorization": f"DPoP {access}",
                                              "DPoP": stolen_proof})  # fmt: skip
    assert stolen.get_json()["error"] == "invalid_dpop_proof"


@pytest.mark.parametrize("change", [
    {"htm": "GET"}, {"htu": "https://elsewhere.example/token"}, {"iat": 1_000_000},
])  # fmt: skip
def test_dpop_proof_refused_at_token(app: Flask, client: FlaskClient,
                                     change: dict[str, Any]) -> None:  # fmt: skip
    account = oidc.make_account(app)
    rp = oidc.register(app)
    si = oidc.sign_in(app, client, rp, account)
    key = ECKey.generate_key("P-256", private=True)
    change = dict(change)
    method, url = change.pop("htm", "POST"), change.pop("htu", f"{ISSUER}/token")
    headers = {**rp.basic(), "DPoP": proof(key, method, url, **change)}
    resp = client.post("/token", headers=headers, data={
        "grant_type": "authorization_code", "code": si.code, "redirect_uri": rp.redirect_uri,
        "code_verifier": si.verifier})  # fmt: skip
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_dpop_proof"


def test_dpop_proof_shapes_refused(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app, grant_types=["client_credentials"])
    key = ECKey.generate_key("P-256", private=True)
    url = f"{ISSUER}/token"
    body = {"htm": "POST", "htu": url, "iat": int(time.time()), "jti": "x1"}
    private_jwk = jwt.encode({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=True)},
                             body, key, algorithms=["ES256"])  # fmt: skip
    wrong_typ = jwt.encode({"typ": "JWT", "alg": "ES256", "jwk": key.as_dict(private=False)},
                           body, key, algorithms=["ES256"])  # fmt: skip
    none = oidc.raw_jws({"typ": "dpop+jwt", "alg": "none",
                         "jwk": key.as_dict(private=False)}, body)  # fmt: skip
    for bad in (private_jwk, wrong_typ, none, "garbage", "a.b.c"):
        resp = client.post("/token", data={"grant_type": "client_credentials"},
                           headers={**rp.basic(), "DPoP": bad})  # fmt: skip
        assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_dpop_proof"
    # a valid proof, used twice
    once = proof(key, "POST", url)
    first = client.post("/token", data={"grant_type": "client_credentials"},
                        headers={**rp.basic(), "DPoP": once})  # fmt: skip
    assert first.get_json()["token_type"] == "DPoP"
    second = client.post("/token", data={"grant_type": "client_credentials"},
                         headers={**rp.basic(), "DPoP": once})  # fmt: skip
    assert second.get_json()["error"] == "invalid_dpop_proof"


def test_code_bound_by_dpop_at_par(app: Flask, client: FlaskClient) -> None:
    """RFC 9449 §10: a DPoP proof at /par binds the code to that key."""
    account = oidc.make_account(app)
    rp = oidc.register(app)
    oidc.ensure_login_endpoint(app)
    key = ECKey.generate_key("P-256", private=True)
    verifier, challenge = oidc.pkce()
    data = oidc.auth_params(rp, code_challenge=challenge, code_challenge_method="S256")
    headers = {**rp.basic(), "DPoP": proof(key, "POST", f"{ISSUER}/par")}
    uri = client.post("/par", data=data, headers=headers).get_json()["request_uri"]
    first = client.get("/authorize", query_string={"client_id": rp.client_id, "request_uri": uri})
    ix_id = oidc.interaction_id(first)
    oidc.finish(app, ix_id, account)
    code = oidc.query(client.get(f"/authorize/resume/{ix_id}"))["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
            "code_verifier": verifier}  # fmt: skip
    other = ECKey.generate_key("P-256", private=True)
    resp = client.post("/token", data=form, headers={
        **rp.basic(), "DPoP": proof(other, "POST", f"{ISSUER}/token")})  # fmt: skip
    assert resp.get_json()["error"] == "invalid_grant"


def test_jws_helper_is_real(client: FlaskClient) -> None:
    """The proof helper makes what the server checks (guard against a vacuous helper)."""
    key = ECKey.generate_key("P-256", private=True)
    token = proof(key, "GET", "https://x")
    assert jws.extract_compact(token.encode()).protected["typ"] == "dpop+jwt"


def test_client_requiring_par(app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> None:
    """RFC 9126 §6: a client registered with require_pushed_authorization_requests
    (``idp clients update --require-par``) is refused at /authorize without PAR."""
    from idp.cli import main

    rp = oidc.register(app)
    _, challenge = oidc.pkce()
    direct = oidc.auth_params(rp, code_challenge=challenge, code_challenge_method="S256")
    assert client.get("/authorize", query_string=direct).status_code == 303
    result = runner.invoke(main, ["clients", "update", rp.client_id, "--require-par"])
    assert result.exit_code == 0, result.output
    refused = client.get("/authorize", query_string=direct)
    assert refused.status_code == 400 and "Location" not in refused.headers
    resp, _, _ = _par(client, rp)
    uri = resp.get_json()["request_uri"]
    pushed = client.get("/authorize", query_string={"client_id": rp.client_id,
                                                    "request_uri": uri})  # fmt: skip
    assert pushed.status_code == 303
    result = runner.invoke(main, ["clients", "update", rp.client_id, "--no-require-par"])
    assert result.exit_code == 0, result.output
    assert client.get("/authorize", query_string=direct).status_code == 303


def test_client_requiring_dpop(app: Flask, client: FlaskClient) -> None:
    """RFC 9449 §5.2: dpop_bound_access_tokens - no token without a proof."""
    with app.app_context():
        from idp.release import clients

        row, secret = clients.register("Strict", [oidc.REDIRECT], dpop_bound=True,
                                       grant_types=["client_credentials"],
                                       actor="test")  # fmt: skip
    rp = oidc.RP(row.client_id, secret)
    bare = client.post("/token", data={"grant_type": "client_credentials"}, headers=rp.basic())
    assert bare.status_code == 400 and bare.get_json()["error"] == "invalid_dpop_proof"
    key = ECKey.generate_key("P-256", private=True)
    headers = {**rp.basic(), "DPoP": proof(key, "POST", f"{ISSUER}/token")}
    ok = client.post("/token", data={"grant_type": "client_credentials"}, headers=headers)
    assert ok.status_code == 200 and ok.get_json()["token_type"] == "DPoP"


def test_public_client_refresh_bound_to_dpop_key(app: Flask, client: FlaskClient) -> None:
    """RFC 9449 §5: a public client's refresh token needs a proof by the same key."""
    account = oidc.make_account(app)
    rp = oidc.register(app, public=True)
    si = oidc.sign_in(app, client, rp, account)
    key = ECKey.generate_key("P-256", private=True)
    tokens = client.post("/token", headers={"DPoP": proof(key, "POST", f"{ISSUER}/token")}, data={
        "grant_type": "authorization_code", "code": si.code, "redirect_uri": rp.redirect_uri,
        "code_verifier": si.verifier, "client_id": rp.client_id}).get_json()  # fmt: skip
    refresh_token = tokens["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token,
            "client_id": rp.client_id}  # fmt: skip
    bare = client.post("/token", data=form)
    assert bare.get_json()["error"] == "invalid_grant"
    thief = ECKey.generate_key("P-256", private=True)
    stolen = client.post("/token", data=form,
                         headers={"DPoP": proof(thief, "POST", f"{ISSUER}/token")})  # fmt: skip
    assert stolen.get_json()["error"] == "invalid_grant"
    # the refusals burnt nothing: the holder of the key refreshes
    ok = client.post("/token", data=form, headers={"DPoP": proof(key, "POST", f"{ISSUER}/token")})
    assert ok.status_code == 200, ok.get_data(as_text=True)
    assert ok.get_json()["token_type"] == "DPoP"


class TestPushesOfPublicClients:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"token_failures_per_ip": 3, "token_failures_per_client": 3}

    def test_are_bounded_per_network_like_failures(
        self, app: Flask, client: FlaskClient
    ) -> None:
        """Anyone who knows a public client's id may push; each push holds its body in
        the ephemeral store for a minute, so pushes from one network count like
        failed authentications (429 after IDP_TOKEN_FAILURES_PER_IP). A confidential
        client's pushes, which authenticate, count nothing."""
        confidential = oidc.register(app)
        for _ in range(5):
            assert _par(client, confidential)[0].status_code == 201
        public = oidc.register(app, public=True)
        data = oidc.auth_params(public, code_challenge=oidc.pkce()[1],
                                code_challenge_method="S256", client_id=public.client_id)
        answers = [client.post("/par", data=data).status_code for _ in range(4)]
        assert answers == [201, 201, 201, 429]
