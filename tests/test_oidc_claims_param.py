"""The ``claims`` request parameter (OIDC Core §5.5) over HTTP: claims asked for the ID
token or UserInfo individually, ``essential``, ``value``/``values``, ``sub`` with a
value, only claims of the client's registered scopes, and consent covering them."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.support import oidc


def claims(**targets: dict[str, Any]) -> str:
    return json.dumps(targets)


def tokens_for(app: Flask, client: FlaskClient, rp: oidc.RP, account: str,
               **extra: Any) -> dict[str, Any]:
    si = oidc.sign_in(app, client, rp, account, **extra)
    resp = oidc.exchange(client, rp, si)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return dict(resp.get_json())


def test_discovery_announces_the_claims_parameter(client: FlaskClient) -> None:
    doc = client.get("/.well-known/openid-configuration").get_json()
    assert doc["claims_parameter_supported"] is True


def test_claims_go_where_they_were_asked_for(app: Flask, client: FlaskClient) -> None:
    account = oidc.make_account(app, phone_number="+49 30 1234")
    rp = oidc.register(app)
    tokens = tokens_for(app, client, rp, account, scope="openid", claims=claims(
        id_token={"given_name": {"essential": True}, "email": None},
        userinfo={"phone_number": None, "family_name": {"essential": False}},
    ))
    id_token = oidc.verify_jwt(client, tokens["id_token"]).claims
    assert id_token["given_name"] == "Ann" and id_token["email"] == "ann@corp.example"
    assert "phone_number" not in id_token and "family_name" not in id_token
    info = oidc.userinfo(client, tokens["access_token"]).get_json()
    assert info == {"sub": account, "phone_number": "+49 30 1234", "family_name": "Example"}
    # A refresh keeps the ID token's requested claims (OIDC Core §12.2).
    again = oidc.refresh(client, rp, tokens["refresh_token"]).get_json()
    assert oidc.verify_jwt(client, again["id_token"]).claims["given_name"] == "Ann"
    info = oidc.userinfo(client, again["access_token"]).get_json()
    assert info["phone_number"] == "+49 30 1234"


def test_only_claims_of_the_clients_registered_scopes(app: Flask, client: FlaskClient) -> None:
    account = oidc.make_account(app, phone_number="+49 30 1234")
    rp = oidc.register(app, scope="openid email")
    tokens = tokens_for(app, client, rp, account, scope="openid", claims=claims(
        userinfo={"phone_number": None, "given_name": None, "email": None,
                  "not_a_claim": None},
    ))
    info = oidc.userinfo(client, tokens["access_token"]).get_json()
    assert info == {"sub": account, "email": "ann@corp.example"}


def test_value_and_values_release_only_a_matching_value(app: Flask, client: FlaskClient) -> None:
    account = oidc.make_account(app)
    rp = oidc.register(app)
    tokens = tokens_for(app, client, rp, account, scope="openid", claims=claims(
        userinfo={"given_name": {"value": "Ann"}, "family_name": {"value": "Other"},
                  "email": {"values": ["x@corp.example", "ann@corp.example"]}},
    ))
    info = oidc.userinfo(client, tokens["access_token"]).get_json()
    assert info["given_name"] == "Ann" and info["email"] == "ann@corp.example"
    assert "family_name" not in info


def test_invalid_claims_parameter_is_invalid_request(app: Flask, client: FlaskClient) -> None:
    rp = oidc.register(app)
    for bad in ("{not json", "[]", json.dumps({"userinfo": []}),
                json.dumps({"id_token": {"email": {"essential": "yes"}}})):
        resp = client.get("/authorize", query_string=oidc.auth_params(rp, claims=bad))
        assert resp.status_code == 303
        assert oidc.query(resp)["error"] == "invalid_request", bad


def test_consent_must_cover_claims_asked_individually(app: Flask, client: FlaskClient) -> None:
    account = oidc.make_account(app)
    rp = oidc.register(app)
    oidc.grant_consent(app, account, rp.client_id, ["openid"])
    oidc.start_session(app, client, account)
    _, challenge = oidc.pkce()
    base = {"scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"}
    # Scopes consented, no claims asked: the code comes at once.
    resp = client.get("/authorize", query_string=oidc.auth_params(rp, **base))
    assert "code" in oidc.query(resp)
    # The e-mail address asked by name: not covered, so the login asks for consent.
    asked = claims(userinfo={"email": None})
    resp = client.get("/authorize", query_string=oidc.auth_params(rp, **base, claims=asked))
    assert oidc.is_login_redirect(app, resp)
    resp = client.get("/authorize", query_string=oidc.auth_params(
        rp, **base, claims=asked, prompt="none"))
    assert oidc.query(resp)["error"] == "consent_required"
    # Once the employee agreed to share the address, it is covered.
    oidc.grant_consent(app, account, rp.client_id, ["openid", "email"])
    resp = client.get("/authorize", query_string=oidc.auth_params(rp, **base, claims=asked))
    assert "code" in oidc.query(resp)


def test_sub_with_a_value_never_answers_for_another_account(
    app: Flask, client: FlaskClient
) -> None:
    ann = oidc.make_account(app)
    bob = oidc.make_account(app, email="bob@corp.example")
    rp = oidc.register(app)
    oidc.grant_consent(app, ann, rp.client_id, ["openid"])
    oidc.start_session(app, client, ann)
    _, challenge = oidc.pkce()
    base = {"scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"}
    resp = client.get("/authorize", query_string=oidc.auth_params(
        rp, **base, claims=claims(id_token={"sub": {"value": ann}})))
    assert "code" in oidc.query(resp)
    for_bob = claims(id_token={"sub": {"value": bob}})
    resp = client.get("/authorize", query_string=oidc.auth_params(
        rp, **base, claims=for_bob, prompt="none"))
    assert oidc.query(resp)["error"] == "login_required"
    resp = client.get("/authorize", query_string=oidc.auth_params(rp, **base, claims=for_bob))
    assert oidc.is_login_redirect(app, resp)  # Ann's session is not used
    ix_id = oidc.interaction_id(resp)
    oidc.finish(app, ix_id, ann)  # and signing in as Ann does not answer either
    resp = client.get(f"/authorize/resume/{ix_id}")
    assert oidc.query(resp)["error"] == "access_denied"


def test_the_consent_page_lists_claims_asked_individually(
    app: Flask, client: FlaskClient
) -> None:
    from urllib.parse import urlsplit

    from idp.mail.outbox import courier
    from tests.support.login import code_from_outbox, post_form

    oidc.make_account(app, phone_number="+49 30 1234")
    rp = oidc.register(app)
    _, challenge = oidc.pkce()
    resp = client.get("/authorize", query_string=oidc.auth_params(
        rp, scope="openid", code_challenge=challenge, code_challenge_method="S256",
        claims=claims(userinfo={"phone_number": {"essential": True}})))
    login = urlsplit(resp.headers["Location"]).path
    post_form(client, login, login + "/email", {"email": "ann@corp.example"})
    resp = post_form(client, login + "/code", login + "/code",
                     {"code": code_from_outbox(app, "ann@corp.example")})
    assert urlsplit(resp.headers["Location"]).path.endswith("/consent")
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Phone number" in page and "+49 30 1234" in page
    assert "ann@corp.example" not in page.split("<main", 1)[-1]  # e-mail not asked
    courier(app).drain()
