"""FAPI-grade options through an independent client library: openid-client
(tests/upstream/rp.js with its FLAGS) pushes the authorization request (RFC 9126,
``buildAuthorizationUrlWithPAR``), authenticates with ``private_key_jwt`` (RFC 7523,
``PrivateKeyJwt``) and binds its tokens to a DPoP key (RFC 9449, ``getDPoPHandle``):
the browser goes to /authorize with only ``client_id`` and ``request_uri``, the code is
exchanged with a DPoP proof, userinfo and the refresh are called with proofs - every
check on the answers is the library's own."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from joserfc.jwk import ECKey

from tests.support import oidc
from tests.support.live import LiveServer
from tests.support.live_oidc import EMAIL, browse_login
from tests.support.smtp import SmtpSink
from tests.test_oidc_certified_rp import POST_LOGOUT, NodeRP


@pytest.fixture
def settings_overrides(live_port: int, smtp_server: SmtpSink) -> dict[str, object]:
    return {"issuer": f"http://127.0.0.1:{live_port}", "smtp_url": smtp_server.url}


def test_par_private_key_jwt_and_dpop_end_to_end(
    app: Flask, live_server: LiveServer, smtp_server: SmtpSink
) -> None:
    base_url = live_server.url
    key = ECKey.generate_key("P-256", private=True, auto_kid=True)
    rp = oidc.register(app, scope="openid profile email wallet", auth_method="private_key_jwt",
                       jwks={"keys": [key.as_dict(private=False)]},
                       post_logout_redirect_uris=[POST_LOGOUT])  # fmt: skip
    flags = {"par": True, "dpop": True, "private_key_jwt": key.as_dict(private=True)}
    node = NodeRP(base_url, rp.client_id, "-", rp.redirect_uri, POST_LOGOUT, EMAIL, "{}",
                  json.dumps(flags))  # fmt: skip
    try:
        authorize = node.receive()["authorize"]
        # only client_id and the pushed request's uri travel through the browser
        assert authorize.startswith(base_url + "/authorize?")
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
        assert set(query) == {"client_id", "request_uri"}
        assert query["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
        browser = requests.Session()
        first = browser.get(authorize, allow_redirects=False, timeout=10)
        back = browse_login(browser, base_url, first, smtp_server)
        node.send({"callback": back.headers["Location"]})
        result = node.receive()["result"]
    finally:
        node.close()
    assert result["token_type"].lower() == "dpop"
    assert result["claims"]["email"] == EMAIL
    assert result["userinfo"]["sub"] == result["claims"]["sub"]
    assert result["refreshed_token_type"].lower() == "dpop"
    introspection = result["introspection"]
    assert introspection["active"] is True and introspection["token_type"] == "DPoP"
    assert set(introspection["cnf"]) == {"jkt"}
    # the bound access token is worthless as a Bearer token
    stolen = requests.get(f"{base_url}/userinfo", timeout=10,
                          headers={"Authorization": f"Bearer {result['access_token']}"})
    assert stolen.status_code == 401 and stolen.json()["error"] == "invalid_token"
    # the pushed request was used once: replaying the authorization URL fails
    again = requests.get(authorize, allow_redirects=False, timeout=10)
    assert again.status_code == 400 and "Location" not in again.headers
