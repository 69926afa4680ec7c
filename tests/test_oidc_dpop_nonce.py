"""DPoP server nonces (RFC 9449 §8 at the token endpoint, §9 at resources), required
with ``IDP_DPOP_NONCE``: a proof without a current nonce is answered
``use_dpop_nonce`` with a ``DPoP-Nonce`` header; the client retries with it. Nonces
are an HMAC of the time window, stateless: any node accepts any node's nonce."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import ECKey

from idp.oidc import dpop
from tests.support import oidc
from tests.support.oidc import ISSUER
from tests.test_oidc_par_dpop import proof


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"dpop_nonce": True}


def _exchange(client: FlaskClient, rp: oidc.RP, si: Any, dpop_proof: str) -> Any:
    return client.post("/token", headers={**rp.basic(), "DPoP": dpop_proof}, data={
        "grant_type": "authorization_code", "code": si.code, "redirect_uri": rp.redirect_uri,
        "code_verifier": si.verifier})


def test_token_endpoint_asks_for_a_nonce_then_accepts_it(
    app: Flask, client: FlaskClient
) -> None:
    key = ECKey.generate_key("P-256", private=True)
    account = oidc.make_account(app)
    rp = oidc.register(app)
    si = oidc.sign_in(app, client, rp, account)
    url = f"{ISSUER}/token"
    first = _exchange(client, rp, si, proof(key, "POST", url))
    assert first.status_code == 400 and first.get_json()["error"] == "use_dpop_nonce"
    nonce = first.headers["DPoP-Nonce"]
    assert 'error="use_dpop_nonce"' in first.headers["WWW-Authenticate"]
    forged = _exchange(client, rp, si, proof(key, "POST", url, nonce=nonce[:-1] + "x"))
    assert forged.get_json()["error"] == "use_dpop_nonce"
    ok = _exchange(client, rp, si, proof(key, "POST", url, nonce=nonce))
    assert ok.status_code == 200, ok.get_data(as_text=True)
    assert ok.get_json()["token_type"] == "DPoP" and ok.headers["DPoP-Nonce"]
    access = ok.get_json()["access_token"]

    info = f"{ISSUER}/userinfo"
    asked = client.get("/userinfo", headers={"Authorization": f"DPoP {access}",
                                             "DPoP": proof(key, "GET", info, access)})
    assert asked.status_code == 401 and asked.get_json()["error"] == "use_dpop_nonce"
    challenges = asked.headers.getlist("WWW-Authenticate")
    assert any(c.startswith("DPoP") and 'error="use_dpop_nonce"' in c for c in challenges)
    fresh = asked.headers["DPoP-Nonce"]
    seen = client.get("/userinfo", headers={"Authorization": f"DPoP {access}",
                                            "DPoP": proof(key, "GET", info, access,
                                                          nonce=fresh)})
    assert seen.status_code == 200 and seen.get_json()["sub"] == account


def test_nonces_are_stateless_and_expire(app: Flask) -> None:
    now = time.time()
    with app.app_context():
        nonce = dpop.current_nonce(now)
        assert dpop.nonce_ok(nonce, now)
        assert dpop.nonce_ok(nonce, now + dpop.NONCE_WINDOW_SECONDS)  # the next window too
        assert not dpop.nonce_ok(nonce, now + 2 * dpop.NONCE_WINDOW_SECONDS)
        assert not dpop.nonce_ok(nonce, now - dpop.NONCE_WINDOW_SECONDS)  # not from the future
        assert not dpop.nonce_ok(None) and not dpop.nonce_ok("1.abc")
        # a nonce is a function of the window and the shared key alone: every node
        # (every process with the same keys) computes the same one, nothing is stored
        assert dpop.current_nonce(now) == nonce


@pytest.mark.parametrize("settings_overrides", [{"dpop_nonce": False}])
def test_off_by_default_no_nonce_asked(app: Flask, client: FlaskClient) -> None:
    key = ECKey.generate_key("P-256", private=True)
    account = oidc.make_account(app)
    rp = oidc.register(app)
    si = oidc.sign_in(app, client, rp, account)
    ok = _exchange(client, rp, si, proof(key, "POST", f"{ISSUER}/token"))
    assert ok.status_code == 200 and "DPoP-Nonce" not in ok.headers
