"""``private_key_jwt`` with keys at a ``jwks_uri`` (issue 18, remaining gaps): a real
HTTP server on 127.0.0.1 publishes the client's JWK Set. The keys are fetched through
the webhooks' SSRF-checked client, bounded in size and time, cached in the shared
ephemeral store (every node, not one process), and fetched again once, rate-limited,
when an assertion names a key the cached set lacks."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.oidc import client_jwks
from idp.release import clients
from tests.support import oidc
from tests.support.webhook_receiver import QuietHandler, free_port, serve, shut

ISSUER = "http://localhost"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class JwksServer:
    port: int
    body: bytes = b'{"keys": []}'
    delay: float = 0.0
    hits: int = 0
    server: ThreadingHTTPServer | None = None
    keys: list[ECKey] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks.json"

    def publish(self, *keys: ECKey) -> None:
        self.keys = list(keys)
        self.body = json.dumps({"keys": [k.as_dict(private=False) for k in keys]}).encode()

    def start(self) -> JwksServer:
        owner = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                owner.hits += 1
                if owner.delay:
                    time.sleep(owner.delay)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

        self.server = serve(self.port, Handler)
        return self

    def stop(self) -> None:
        shut(self.server)
        self.server = None


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"backchannel_allow_private": True}


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    made = JwksServer(free_port())
    yield made.start()
    made.stop()


def new_key() -> ECKey:
    return ECKey.generate_key("P-256", private=True, auto_kid=True)


def assertion(client_id: str, key: ECKey) -> str:
    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "aud": ISSUER, "iat": now,
            "exp": now + 60, "jti": secrets.token_hex(8)}
    return jwt.encode({"alg": "ES256", "kid": key.kid}, body, key, algorithms=["ES256"])


def par(client: FlaskClient, rp: oidc.RP, signed: str) -> int | str:
    """201 when /par accepted the client's assertion, else the error code."""
    _, challenge = oidc.pkce()
    data = oidc.auth_params(rp, code_challenge=challenge, code_challenge_method="S256")
    data.update(client_assertion_type=ASSERTION_TYPE, client_assertion=signed)
    resp = client.post("/par", data=data)
    return 201 if resp.status_code == 201 else str(resp.get_json()["error"])


def test_keys_at_a_jwks_uri_are_fetched_once_and_shared(
    app: Flask, client: FlaskClient, jwks_server: JwksServer
) -> None:
    key = new_key()
    jwks_server.publish(key)
    rp = oidc.register(app, auth_method="private_key_jwt", jwks_uri=jwks_server.url)
    assert par(client, rp, assertion(rp.client_id, key)) == 201
    assert par(client, rp, assertion(rp.client_id, key)) == 201
    # another node (another app, the same ephemeral store) uses the cached set
    assert par(app.test_client(), rp, assertion(rp.client_id, key)) == 201
    assert jwks_server.hits == 1
    # a key the client does not publish is refused
    assert par(client, rp, assertion(rp.client_id, new_key())) == "invalid_client"


def test_a_rotated_key_is_fetched_again_once(
    app: Flask, client: FlaskClient, jwks_server: JwksServer
) -> None:
    old, rotated = new_key(), new_key()
    jwks_server.publish(old)
    rp = oidc.register(app, auth_method="private_key_jwt", jwks_uri=jwks_server.url)
    assert par(client, rp, assertion(rp.client_id, old)) == 201
    jwks_server.publish(old, rotated)
    assert par(client, rp, assertion(rp.client_id, rotated)) == 201  # unknown kid: refetch
    assert jwks_server.hits == 2
    # unknown kids right after: no further fetch (rate-limited), refused
    for _ in range(3):
        assert par(client, rp, assertion(rp.client_id, new_key())) == "invalid_client"
    assert jwks_server.hits == 2


def test_an_oversized_or_slow_or_broken_jwks_is_refused(
    app: Flask, client: FlaskClient, jwks_server: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_key()
    jwks_server.publish(key)
    jwks_server.body = jwks_server.body[:-1] + b"," + b" " * client_jwks.MAX_BYTES + b"}"
    rp = oidc.register(app, auth_method="private_key_jwt", jwks_uri=jwks_server.url)
    assert par(client, rp, assertion(rp.client_id, key)) == "invalid_client"
    assert par(client, rp, assertion(rp.client_id, key)) == "invalid_client"
    assert jwks_server.hits == 1  # a failed fetch is remembered for a while
    monkeypatch.setattr(client_jwks, "FETCH_TIMEOUT_SECONDS", 0.5)
    jwks_server.publish(key)
    jwks_server.delay = 2.0
    slow = oidc.register(app, auth_method="private_key_jwt", jwks_uri=jwks_server.url)
    started = time.monotonic()
    assert par(client, slow, assertion(slow.client_id, key)) == "invalid_client"
    assert time.monotonic() - started < 1.9
    jwks_server.delay = 0.0
    jwks_server.body = json.dumps({"keys": [key.as_dict(private=True)]}).encode()
    private = oidc.register(app, auth_method="private_key_jwt", jwks_uri=jwks_server.url)
    # a set with private keys is refused like a registered one
    assert par(client, private, assertion(private.client_id, key)) == "invalid_client"


def test_registration_rules(app: Flask, jwks_server: JwksServer) -> None:
    key = new_key()
    with app.app_context():
        with pytest.raises(clients.ClientRegistrationError, match="not both"):
            clients.register("Shop", [oidc.REDIRECT], auth_method="private_key_jwt",
                             jwks={"keys": [key.as_dict(private=False)]},
                             jwks_uri=jwks_server.url, actor="test")
        with pytest.raises(clients.ClientRegistrationError, match="private_key_jwt"):
            clients.register("Shop", [oidc.REDIRECT], jwks_uri=jwks_server.url, actor="test")
        with pytest.raises(clients.ClientRegistrationError, match="jwks_uri"):
            clients.register("Shop", [oidc.REDIRECT], auth_method="private_key_jwt",
                             jwks_uri="http://shop.example/jwks.json", actor="test")
        client, _ = clients.register("Shop", [oidc.REDIRECT], auth_method="private_key_jwt",
                                     jwks={"keys": [key.as_dict(private=False)]}, actor="test")
        updated, _ = clients.update(client.client_id, jwks_uri=jwks_server.url, actor="test")
        assert updated.jwks_uri == jwks_server.url and updated.jwks is None
        assert clients.describe(updated)["jwks_uri"] == jwks_server.url


@pytest.mark.parametrize("settings_overrides", [{"backchannel_allow_private": False}])
def test_a_private_address_is_refused(app: Flask, jwks_server: JwksServer) -> None:
    with app.app_context(), pytest.raises(clients.ClientRegistrationError, match="jwks_uri"):
        clients.register("Shop", [oidc.REDIRECT], auth_method="private_key_jwt",
                         jwks_uri=jwks_server.url, actor="test")


def test_apply_and_export_carry_the_jwks_uri(app: Flask, jwks_server: JwksServer) -> None:
    from idp.config import apply as config_apply
    from idp.config import export as config_export

    text = json.dumps({"version": 1, "clients": [{
        "name": "Keys at a URL", "redirect_uris": [oidc.REDIRECT],
        "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": jwks_server.url}]})
    with app.app_context():
        config_apply.apply(config_apply.parse(text), actor="test")
        [exported] = [c for c in config_export.export_config()["clients"]
                      if c["name"] == "Keys at a URL"]
        assert exported["jwks_uri"] == jwks_server.url and "jwks" not in exported
        client = clients.get(exported["client_id"])
        assert client is not None and client.jwks_uri == jwks_server.url
