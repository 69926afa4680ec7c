"""Issue 10, findings 7, 9 and 10 (an outside probe of the OpenID Provider).

* 7: client assertions (RFC 7523) take integer ``exp``/``iat``/``nbf`` only and one
  audience (the issuer or the token endpoint, at every endpoint); a request using two
  client authentication methods at once is ``invalid_request`` (RFC 6749 §2.3).
* 9: the port of a loopback redirect URI may vary only for public (native) clients
  (RFC 8252 §7.3); ``post_logout_redirect_uri`` matches exactly.
* 10: failed client authentications (and failed grants of public clients) are
  throttled per (client, address) and per address with 429 and ``Retry-After``; a
  stranger elsewhere never locks a merchant out; success writes nothing; the store
  down means 503; oversized forms are refused before any work.
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.ephemeral import EphemeralUnavailable
from tests.support import oidc
from tests.support.oidc import ISSUER

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PER_CLIENT = 3
PER_IP = 5
MERCHANT_IP = {"REMOTE_ADDR": "198.51.100.10"}
STRANGER_IP = {"REMOTE_ADDR": "203.0.113.66"}


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Small limits; windows (aligned to the clock) so long that no test straddles a
    window's end."""
    return {"token_failures_per_client": PER_CLIENT, "token_failures_per_ip": PER_IP,
            "token_failure_window_seconds": 10**9}  # fmt: skip


# -- finding 7: client assertions ---------------------------------------------------


def _key_client(app: Flask) -> tuple[oidc.RP, ECKey]:
    key = ECKey.generate_key("P-256", private=True, auto_kid=True)
    rp = oidc.register(app, grant_types=["client_credentials", "authorization_code"],
                       auth_method="private_key_jwt",
                       jwks={"keys": [key.as_dict(private=False)]})  # fmt: skip
    return rp, key


def _assertion(rp: oidc.RP, key: ECKey, **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"iss": rp.client_id, "sub": rp.client_id,
                            "aud": f"{ISSUER}/token", "iat": now, "exp": now + 60,
                            "jti": secrets.token_hex(8)}  # fmt: skip
    body.update(claims)
    return jwt.encode({"alg": "ES256", "kid": key.kid}, body, key, algorithms=["ES256"])


def _jwt_post(client: FlaskClient, path: str, assertion: str, **data: str) -> Any:
    form = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion, **data}
    if path == "/token":
        form.setdefault("grant_type", "client_credentials")
    else:
        form.setdefault("token", "x" * 40)
    return client.post(path, data=form)


def _refused_client(resp: Any) -> None:
    assert resp.status_code in (400, 401), resp.get_data(as_text=True)
    assert resp.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"exp": 1896515409.5}, id="exp-float-three-years-ahead"),
        pytest.param({"exp": int(time.time()) + 60.5}, id="exp-float"),
        pytest.param({"exp": float(int(time.time()) + 60)}, id="exp-integral-float"),
        pytest.param({"exp": str(int(time.time()) + 60)}, id="exp-string"),
        pytest.param({"iat": time.time()}, id="iat-float"),
        pytest.param({"iat": True}, id="iat-bool"),
        pytest.param({"iat": str(int(time.time()))}, id="iat-string"),
        pytest.param({"nbf": time.time() - 5}, id="nbf-float"),
        pytest.param({"nbf": False}, id="nbf-bool"),
    ],
)
def test_assertion_time_claims_must_be_integers(
    app: Flask, client: FlaskClient, claims: dict[str, Any]
) -> None:
    rp, key = _key_client(app)
    _refused_client(_jwt_post(client, "/token", _assertion(rp, key, **claims)))


@pytest.mark.parametrize(
    "aud",
    [
        pytest.param([f"{ISSUER}/token", "https://elsewhere.example"], id="array-with-foreign"),
        pytest.param([ISSUER, f"{ISSUER}/token"], id="array-of-two-ours"),
        pytest.param(f"{ISSUER}/introspect", id="introspect-at-token"),
        pytest.param(f"{ISSUER}/revoke", id="revoke-at-token"),
        pytest.param([], id="empty-array"),
        pytest.param(f"{ISSUER}/token/", id="trailing-slash"),
    ],
)
def test_assertion_audience_is_exactly_issuer_or_token_endpoint(
    app: Flask, client: FlaskClient, aud: Any
) -> None:
    rp, key = _key_client(app)
    _refused_client(_jwt_post(client, "/token", _assertion(rp, key, aud=aud)))


@pytest.mark.parametrize("aud", [ISSUER, f"{ISSUER}/token", [ISSUER], [f"{ISSUER}/token"]])
def test_assertion_single_audience_accepted(app: Flask, client: FlaskClient, aud: Any) -> None:
    rp, key = _key_client(app)
    resp = _jwt_post(client, "/token", _assertion(rp, key, aud=aud))
    assert resp.status_code == 200, resp.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/introspect", "/revoke"])
def test_assertion_audience_at_introspect_and_revoke(
    app: Flask, client: FlaskClient, path: str
) -> None:
    """The same audiences everywhere: the token endpoint or the issuer, never the URL
    of the endpoint called (docs/oidc.md)."""
    rp, key = _key_client(app)
    assert _jwt_post(client, path, _assertion(rp, key)).status_code == 200
    assert _jwt_post(client, path, _assertion(rp, key, aud=ISSUER)).status_code == 200
    _refused_client(_jwt_post(client, path, _assertion(rp, key, aud=f"{ISSUER}{path}")))


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
@pytest.mark.parametrize("combo", ["basic+assertion", "basic+secret", "secret+assertion"])
def test_two_client_authentication_methods_refused(
    app: Flask, client: FlaskClient, path: str, combo: str
) -> None:
    """RFC 6749 §2.3: a client MUST NOT use more than one authentication method per
    request; the valid one among them does not make the request acceptable."""
    rp = oidc.register(app, grant_types=["client_credentials"])
    key_rp, key = _key_client(app)
    form: dict[str, str] = {}
    headers: dict[str, str] = {}
    if combo.startswith("basic"):
        headers = rp.basic()
    if "secret" in combo:
        form.update(client_id=rp.client_id, client_secret=str(rp.secret))
    if "assertion" in combo:
        form.update(client_assertion_type=ASSERTION_TYPE,
                    client_assertion=_assertion(key_rp, key))  # fmt: skip
    if path == "/token":
        form["grant_type"] = "client_credentials"
    else:
        form["token"] = "x" * 40
    resp = client.post(path, data=form, headers=headers)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert resp.get_json()["error"] == "invalid_request"


# -- finding 9: loopback redirect URIs ----------------------------------------------


def _error_page(resp: Any) -> None:
    assert resp.status_code == 400 and "Location" not in resp.headers


def test_confidential_client_loopback_port_must_match(app: Flask, client: FlaskClient) -> None:
    oidc.ensure_login_endpoint(app)
    rp = oidc.register(app, ["http://127.0.0.1:8080/cb"])
    exact = client.get("/authorize", query_string=oidc.auth_params(rp))
    assert oidc.is_login_redirect(app, exact)
    other = oidc.auth_params(rp, redirect_uri="http://127.0.0.1:9999/cb")
    _error_page(client.get("/authorize", query_string=other))
    no_port = oidc.auth_params(rp, redirect_uri="http://127.0.0.1/cb")
    _error_page(client.get("/authorize", query_string=no_port))


def test_public_client_loopback_port_varies_and_exchange_matches_it(
    app: Flask, client: FlaskClient
) -> None:
    """RFC 8252 §7.3 for native apps; the code exchange names the URI actually used."""
    account = oidc.make_account(app)
    rp = oidc.register(app, ["http://127.0.0.1/cb"], public=True)
    used = oidc.RP(rp.client_id, None, "http://127.0.0.1:53011/cb")
    si = oidc.sign_in(app, client, used, account)
    wrong = oidc.exchange(client, rp, si)  # the registered URI, not the one used
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "invalid_grant"
    si = oidc.sign_in(app, client, used, account)
    assert oidc.exchange(client, used, si).status_code == 200


def test_post_logout_loopback_uri_matches_exactly(app: Flask, client: FlaskClient) -> None:
    registered = "http://127.0.0.1:8080/bye"
    signed = oidc.signed_in_with_session(app, client, registered)
    other_port = client.get("/logout", query_string={
        "id_token_hint": signed["id_token"],
        "post_logout_redirect_uri": "http://127.0.0.1:9999/bye"})  # fmt: skip
    assert "Location" not in other_port.headers
    oidc.start_session(app, client, signed["account"])
    exact = client.get("/logout", query_string={
        "id_token_hint": signed["id_token"], "post_logout_redirect_uri": registered})
    assert exact.status_code == 303 and exact.headers["Location"] == registered


def test_public_client_post_logout_loopback_uri_matches_exactly(
    app: Flask, client: FlaskClient
) -> None:
    account = oidc.make_account(app)
    rp = oidc.register(app, ["http://127.0.0.1/cb"], public=True,
                       post_logout_redirect_uris=["http://127.0.0.1/bye"])  # fmt: skip
    tokens = oidc.exchange(client, rp, oidc.sign_in(app, client, rp, account)).get_json()
    oidc.start_session(app, client, account)
    resp = client.get("/logout", query_string={
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": "http://127.0.0.1:4444/bye"})  # fmt: skip
    assert "Location" not in resp.headers


# -- finding 10: throttling and form caps ------------------------------------------


def _cc(client: FlaskClient, rp: oidc.RP, secret: str | None = None,
        ip: dict[str, str] = MERCHANT_IP, path: str = "/token") -> Any:  # fmt: skip
    data = {"grant_type": "client_credentials"} if path == "/token" else {"token": "x" * 40}
    return client.post(path, data=data, headers=_basic(rp.client_id, secret or str(rp.secret)),
                       environ_base=ip)  # fmt: skip


def _throttled(resp: Any) -> None:
    assert resp.status_code == 429, resp.get_data(as_text=True)
    assert int(resp.headers["Retry-After"]) >= 1
    body = resp.get_json()
    assert body["error"] and body["error_description"]
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
def test_wrong_secrets_are_throttled_per_client_and_address(
    app: Flask, client: FlaskClient, path: str
) -> None:
    rp = oidc.register(app, grant_types=["client_credentials"])
    for _ in range(PER_CLIENT):
        assert _cc(client, rp, "wrong", STRANGER_IP, path).status_code == 401
    _throttled(_cc(client, rp, "wrong", STRANGER_IP, path))
    # Throttled callers get no verdict on their guesses, right or wrong.
    _throttled(_cc(client, rp, None, STRANGER_IP, path))


def test_stranger_cannot_lock_a_merchant_out(app: Flask, client: FlaskClient) -> None:
    """SECURITY.md: nothing an anonymous requester does can lock a person out. Wrong
    secrets for the merchant's client id from elsewhere leave its own servers alone."""
    rp = oidc.register(app, grant_types=["client_credentials"])
    for _ in range(PER_CLIENT + 2):
        _cc(client, rp, "wrong", STRANGER_IP)
    _throttled(_cc(client, rp, "wrong", STRANGER_IP))
    assert _cc(client, rp, None, MERCHANT_IP).status_code == 200


def test_wrong_secrets_for_many_clients_throttled_per_address(
    app: Flask, client: FlaskClient
) -> None:
    rps = [oidc.register(app, grant_types=["client_credentials"], name=f"S{i}") for i in range(3)]
    sent = 0
    for rp in rps:
        for _ in range(2):
            if sent < PER_IP:
                assert _cc(client, rp, "wrong", STRANGER_IP).status_code == 401
                sent += 1
    fresh = oidc.register(app, grant_types=["client_credentials"], name="Fresh")
    _throttled(_cc(client, fresh, "wrong", STRANGER_IP))
    assert _cc(client, fresh, None, MERCHANT_IP).status_code == 200


def test_unknown_client_ids_throttled_per_address(client: FlaskClient) -> None:
    form = {"grant_type": "client_credentials"}
    for i in range(PER_IP):
        resp = client.post("/token", data=form, headers=_basic(f"nobody-{i}", "x"),
                           environ_base=STRANGER_IP)  # fmt: skip
        assert resp.status_code == 401
    _throttled(client.post("/token", data=form, headers=_basic("nobody-else", "x"),
                           environ_base=STRANGER_IP))  # fmt: skip


def test_an_ipv6_attacker_cannot_rotate_addresses_within_its_64(client: FlaskClient) -> None:
    """Per-IP limits count an IPv6 client's /64 (``idp.web.client_network``), like the
    e-mail code limits: picking a new address of the same /64 for each try does not
    reset the count."""
    form = {"grant_type": "client_credentials"}
    for i in range(PER_IP):
        resp = client.post("/token", data=form, headers=_basic(f"nobody-{i}", "x"),
                           environ_base={"REMOTE_ADDR": f"2001:db8:1:2::{i + 1:x}"})  # fmt: skip
        assert resp.status_code == 401
    _throttled(client.post("/token", data=form, headers=_basic("nobody-else", "x"),
                           environ_base={"REMOTE_ADDR": "2001:db8:1:2:ffff::1"}))  # fmt: skip
    other = client.post("/token", data=form, headers=_basic("nobody-else", "x"),
                        environ_base={"REMOTE_ADDR": "2001:db8:1:3::1"})  # fmt: skip
    assert other.status_code == 401  # another /64 is another client


def test_public_client_wrong_refresh_tokens_and_codes_throttled(
    app: Flask, client: FlaskClient
) -> None:
    rp = oidc.register(app, ["http://127.0.0.1/cb"], public=True)
    forms = [
        {"grant_type": "refresh_token", "refresh_token": secrets.token_urlsafe(32)},
        {"grant_type": "authorization_code", "code": secrets.token_urlsafe(36),
         "redirect_uri": rp.redirect_uri, "code_verifier": "v" * 50},
    ]  # fmt: skip
    for i in range(PER_CLIENT):
        resp = client.post("/token", data={**forms[i % 2], "client_id": rp.client_id},
                           environ_base=STRANGER_IP)  # fmt: skip
        assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"
    _throttled(client.post("/token", data={**forms[0], "client_id": rp.client_id},
                           environ_base=STRANGER_IP))  # fmt: skip


def test_authenticated_clients_failed_grants_do_not_throttle_it(
    app: Flask, client: FlaskClient
) -> None:
    """Bogus codes a merchant's server redeems (anyone can load its callback page
    with one) never throttle that merchant: only failures without a valid client
    credential count (docs/oidc.md, throttling)."""
    rp = oidc.register(app, grant_types=["authorization_code", "client_credentials"])
    for _ in range(PER_IP + 1):
        resp = client.post("/token", data={"grant_type": "authorization_code",
                                           "code": secrets.token_urlsafe(36),
                                           "redirect_uri": rp.redirect_uri},
                           headers=rp.basic(), environ_base=MERCHANT_IP)  # fmt: skip
        assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"
    assert _cc(client, rp, None, MERCHANT_IP).status_code == 200


def test_throttle_store_down_fails_closed(app: Flask, client: FlaskClient) -> None:
    """No limit skipped: with the ephemeral store down even a correct secret gets 503."""
    rp = oidc.register(app, grant_types=["client_credentials"])
    services = app.extensions["unitgate"]
    working = services.ephemeral
    services.ephemeral = _DownStore()
    try:
        for secret in (None, "wrong"):
            resp = _cc(client, rp, secret)
            assert resp.status_code == 503, resp.get_data(as_text=True)
            assert resp.get_json()["error"] == "temporarily_unavailable"
    finally:
        services.ephemeral = working
    assert _cc(client, rp).status_code == 200


def test_successful_client_credentials_write_nothing_and_read_once(
    app: Flask, client: FlaskClient
) -> None:
    rp = oidc.register(app, grant_types=["client_credentials"])
    services = app.extensions["unitgate"]
    counting = _CountingStore(services.ephemeral)
    services.ephemeral = counting
    try:
        for _ in range(3):  # a busy merchant: the IP's count is read once per 2 s
            assert _cc(client, rp).status_code == 200
    finally:
        services.ephemeral = counting.inner
    assert counting.writes == [] and len(counting.reads) <= 1, counting.__dict__


def test_hundred_thousand_parameters_refused_before_authentication(
    app: Flask, client: FlaskClient
) -> None:
    rp = oidc.register(app, grant_types=["client_credentials"])
    body = "grant_type=client_credentials&" + "&".join(f"p{i}=1" for i in range(100_000))
    resp = client.post("/token", data=body, headers={
        **rp.basic(), "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert resp.status_code in (400, 413), resp.status_code
    assert resp.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
def test_too_many_or_too_large_form_parameters_refused(
    app: Flask, client: FlaskClient, path: str
) -> None:
    rp = oidc.register(app, grant_types=["client_credentials"])
    many = "token=x&grant_type=client_credentials&" + "&".join(f"p{i}=1" for i in range(100))
    resp = client.post(path, data=many, headers={
        **rp.basic(), "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_request"
    big = {"grant_type": "client_credentials", "token": "x", "pad": "y" * 70_000}
    resp = client.post(path, data=big, headers=rp.basic())
    assert resp.status_code == 413 and resp.get_json()["error"] == "invalid_request"
    parts = {f"p{i}": "1" for i in range(150)}
    resp = client.post(path, data={"grant_type": "client_credentials", "token": "x", **parts},
                       headers=rp.basic(), content_type="multipart/form-data")  # fmt: skip
    assert resp.status_code in (400, 413) and resp.get_json()["error"] == "invalid_request"


def test_normal_forms_still_work(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app, grant_types=["client_credentials"])
    extra = {f"ext{i}": "v" for i in range(90)}
    resp = client.post("/token", data={"grant_type": "client_credentials", **extra},
                       headers=rp.basic())  # fmt: skip
    assert resp.status_code == 200
    multipart = client.post("/token", data={"grant_type": "client_credentials"},
                            headers=rp.basic(), content_type="multipart/form-data")  # fmt: skip
    assert multipart.status_code == 200


class _DownStore:
    def __getattr__(self, name: str) -> Any:
        def down(*args: Any, **kwargs: Any) -> Any:
            raise EphemeralUnavailable("test: store down")

        return down


class _CountingStore:
    WRITES = ("put", "add", "take", "delete", "incr")

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reads: list[str] = []
        self.writes: list[str] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            (self.writes if name in self.WRITES else self.reads).append(f"{name}{args[:1]}")
            return target(*args, **kwargs)

        return call
