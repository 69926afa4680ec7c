"""Helpers for the OpenID Provider tests: accounts, clients, PKCE, a browser sign-in
that finishes the login interaction programmatically, token exchange, and ID/access
token verification with joserfc against the served JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask, url_for
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet
from werkzeug.test import TestResponse

from idp.accounts import accesses
from idp.interaction import pending as interaction
from idp.interaction import sessions
from idp.release import clients, consent, merchants
from idp.services import ephemeral
from idp.store.db import db
from idp.store.models import Account, Unit, UnitProfileField
from idp.store.unit_of_work import atomic

ISSUER = "http://localhost"
REDIRECT = "https://rp.example/cb"


def ensure_login_endpoint(app: Flask) -> None:
    """Where /authorize sends the browser to log in. The login pages are another
    module; until it is present, a plain page stands at ``login.start`` so the
    redirect can be built. Tests finish interactions with :func:`finish`."""
    if "login.start" not in app.view_functions:
        app.add_url_rule(
            "/login/<interaction_id>",
            endpoint="login.start",
            view_func=lambda interaction_id: "login page",
        )


def is_login_redirect(app: Flask, resp: TestResponse) -> bool:
    """True for a 303 to the login pages (``login.start``) of some interaction."""
    if resp.status_code != 303:
        return False
    ix_id = interaction_id(resp)
    with app.test_request_context("/"):
        expected = url_for("login.start", interaction_id=ix_id)
    return urlsplit(resp.headers["Location"]).path == urlsplit(expected).path


def make_account(app: Flask, email: str = "ann@corp.example", **fields: Any) -> str:
    with app.app_context():
        values: dict[str, Any] = {
            "email": email,
            "email_verified": True,
            "given_name": "Ann",
            "family_name": "Example",
        }
        values.update(fields)
        account = Account(**values)
        db.session.add(account)
        db.session.commit()
        return account.id


def make_unit(app: Flask, account_id: str, name: str = "Corp GmbH",
              roles: list[str] | None = None, fields: tuple[str, ...] = (),
              facts: dict[str, str] | None = None,
              owners: dict[str, str] | None = None) -> str:
    """A unit (with ``fields`` as its own wallet fields) and the account's active
    access to it with ``roles`` and the employer ``facts`` (``cost_centre``,
    ``extra.<field>``...), each set by its writer in ``owners`` (default: the
    employee), written through ``idp.accounts.accesses``."""
    with app.app_context():
        unit = Unit(name=name, slug=name.lower().replace(" ", "-"))
        db.session.add(unit)
        db.session.flush()
        for i, fname in enumerate(fields):
            db.session.add(UnitProfileField(unit_id=unit.id, name=fname, label=fname, position=i))
        with atomic():
            row = accesses.create(account_id, unit.id, roles or [], "test", event=None)
            for name, value in (facts or {}).items():
                accesses.set_facts(row, {name: value}, (owners or {}).get(name, "employee"))
        return unit.id


def set_status(app: Flask, account_id: str, status: str) -> None:
    with app.app_context():
        account = db.session.get(Account, account_id)
        assert account is not None
        account.status = status
        db.session.commit()


@dataclass
class RP:
    """A registered client and its secret."""

    client_id: str
    secret: str | None
    redirect_uri: str = REDIRECT

    def basic(self) -> dict[str, str]:
        raw = f"{self.client_id}:{self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def register(app: Flask, redirect_uris: list[str] | None = None, **kwargs: Any) -> RP:
    kwargs.setdefault("scope", "openid profile email phone wallet org offline_access")
    with app.app_context():
        client, secret = clients.register(
            kwargs.pop("name", "Shop"), redirect_uris or [REDIRECT], **kwargs, actor="test"
        )
        return RP(client.client_id, secret, (redirect_uris or [REDIRECT])[0])


def pkce() -> tuple[str, str]:
    """A (verifier, S256 challenge) pair (RFC 7636 §4.1, §4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def query(resp: TestResponse) -> dict[str, str]:
    """The query parameters of a redirect's Location."""
    location = resp.headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def auth_params(rp: RP, **extra: Any) -> dict[str, Any]:
    params = {
        "response_type": "code",
        "client_id": rp.client_id,
        "redirect_uri": rp.redirect_uri,
        "scope": "openid profile email",
        "state": "st-" + secrets.token_hex(4),
        "nonce": "n-" + secrets.token_hex(4),
    }
    params.update({k: v for k, v in extra.items() if v is not None})
    return {k: v for k, v in params.items() if v != ""}


def interaction_id(resp: TestResponse) -> str:
    """The interaction id in a redirect to ``login.start``."""
    assert resp.status_code == 303, resp.get_data(as_text=True)
    return urlsplit(resp.headers["Location"]).path.rstrip("/").rsplit("/", 1)[-1]


def finish(
    app: Flask,
    ix_id: str,
    account_id: str,
    *,
    amr: list[str] | None = None,
    acr: str | None = "urn:unitgate:acr:email-otp",
    unit_id: str | None = None,
    auth_time: float | None = None,
    consent_scopes: bool = True,
) -> None:
    """Do what the login pages do: authenticate the interaction and record consent."""
    with app.app_context():
        data = ephemeral().get(f"ix:{ix_id}")
        assert data is not None, "interaction not found"
        ix = interaction.Interaction(**data)
        ix.account_id = account_id
        ix.auth_time = auth_time if auth_time is not None else time.time()
        ix.amr = amr or ["otp"]
        ix.acr = acr
        ix.unit_id = unit_id
        ix.consented = True
        if consent_scopes:
            consent.grant(account_id, ix.merchant_id, ix.scopes, ix.claims)
        interaction.save(ix)


def start_session(
    app: Flask,
    client: FlaskClient,
    account_id: str,
    auth_time: float | None = None,
    amr: list[str] | None = None,
) -> None:
    """Give the test browser a live session (what a finished login leaves behind);
    ``amr`` defaults to an e-mail-code login (``["otp"]``)."""
    from datetime import UTC, datetime

    with app.test_request_context("/"):
        when = datetime.fromtimestamp(auth_time, UTC) if auth_time else None
        sessions.create(account_id, amr or ["otp"], "urn:unitgate:acr:email-otp", auth_time=when)
        from flask import g

        token = g.session_cookie
    client.set_cookie(sessions.COOKIE, token, domain="localhost")


def grant_consent(app: Flask, account_id: str, client_id: str, scopes: list[str]) -> None:
    with app.app_context():
        merchant = merchants.of_client(client_id)
        assert merchant is not None, f"no client {client_id}"
        consent.grant(account_id, merchant.id, scopes, [])


@dataclass
class SignIn:
    code: str
    state: str
    nonce: str
    verifier: str | None
    params: dict[str, Any] = field(default_factory=dict)
    redirect: dict[str, str] = field(default_factory=dict)


def sign_in(
    app: Flask,
    client: FlaskClient,
    rp: RP,
    account_id: str,
    use_pkce: bool = True,
    unit_id: str | None = None,
    **extra: Any,
) -> SignIn:
    """The whole browser leg: /authorize, login (finished programmatically), resume."""
    ensure_login_endpoint(app)
    verifier, challenge = pkce() if use_pkce else (None, None)
    params = auth_params(
        rp,
        code_challenge=challenge,
        code_challenge_method="S256" if use_pkce else None,
        **extra,
    )
    resp = client.get("/authorize", query_string=params)
    ix_id = interaction_id(resp)
    finish(app, ix_id, account_id, unit_id=unit_id)
    resp = client.get(f"/authorize/resume/{ix_id}")
    assert resp.status_code == 303, resp.get_data(as_text=True)
    q = query(resp)
    assert "code" in q, q
    return SignIn(q["code"], params["state"], params["nonce"], verifier, params, q)


def exchange(client: FlaskClient, rp: RP, si: SignIn, **overrides: Any) -> TestResponse:
    data = {
        "grant_type": "authorization_code",
        "code": si.code,
        "redirect_uri": rp.redirect_uri,
    }
    if si.verifier:
        data["code_verifier"] = si.verifier
    data.update(overrides)
    data = {k: v for k, v in data.items() if v is not None}
    headers = rp.basic() if rp.secret else {}
    if not rp.secret:
        data.setdefault("client_id", rp.client_id)
    return client.post("/token", data=data, headers=headers)


def served_keys(client: FlaskClient) -> KeySet:
    jwks_uri = client.get("/.well-known/openid-configuration").get_json()["jwks_uri"]
    path = urlsplit(jwks_uri).path
    return KeySet.import_key_set(client.get(path).get_json())


def verify_jwt(client: FlaskClient, token: str) -> jwt.Token:
    """Decode ``token`` with the served JWKS and the ES256/RS256 allow-list."""
    return jwt.decode(token, served_keys(client), algorithms=["ES256", "RS256"])


def refresh(client: FlaskClient, rp: RP, token: str, **extra: Any) -> TestResponse:
    data = {"grant_type": "refresh_token", "refresh_token": token, **extra}
    if not rp.secret:
        data["client_id"] = rp.client_id
    return client.post("/token", data=data, headers=rp.basic() if rp.secret else {})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_jws(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS built by hand (for forged tokens joserfc refuses to make)."""
    return ".".join((b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()),
                     b64(signature)))  # fmt: skip


def hs256_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    unsigned = raw_jws(header, claims).rsplit(".", 1)[0]
    sig = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
    return f"{unsigned}.{b64(sig)}"


def userinfo(client: FlaskClient, access_token: str) -> TestResponse:
    return client.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})


def signed_in_with_session(
    app: Flask, client: FlaskClient, post_logout_redirect_uri: str
) -> dict[str, Any]:
    """A merchant registered with ``post_logout_redirect_uri``, its tokens for a new
    account, and a live browser session of that account in ``client``."""
    account = make_account(app)
    rp = register(app, post_logout_redirect_uris=[post_logout_redirect_uri])
    tokens = exchange(client, rp, sign_in(app, client, rp, account)).get_json()
    start_session(app, client, account)
    return {"rp": rp, "account": account, **tokens}


def has_session(app: Flask, client: FlaskClient) -> bool:
    """True when ``client``'s session cookie names a live session."""
    cookie = client.get_cookie(sessions.COOKIE)
    if cookie is None or not cookie.value:
        return False
    with app.test_request_context("/", headers={"Cookie": f"{sessions.COOKIE}={cookie.value}"}):
        return sessions.current() is not None
