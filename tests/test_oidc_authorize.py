"""The authorization endpoint: error pages versus error redirects, RFC 9207 ``iss``,
PKCE at the front, response types, prompt and max_age, 303, CORS, CSP, fuzzing."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support import oidc
from tests.support.oidc import ISSUER


@pytest.fixture
def rp(app: Flask) -> oidc.RP:
    oidc.ensure_login_endpoint(app)
    return oidc.register(app)


@pytest.fixture
def public_rp(app: Flask) -> oidc.RP:
    oidc.ensure_login_endpoint(app)
    return oidc.register(app, ["http://127.0.0.1/cb"], public=True)


def assert_error_page(resp: object) -> None:
    assert resp.status_code == 400  # type: ignore[attr-defined]
    assert "Location" not in resp.headers  # type: ignore[attr-defined]
    assert resp.mimetype == "text/html"  # type: ignore[attr-defined]


def assert_error_redirect(resp: object, rp: oidc.RP, error: str, state: str | None) -> None:
    assert resp.status_code == 303, resp.get_data(as_text=True)  # type: ignore[attr-defined]
    location = resp.headers["Location"]  # type: ignore[attr-defined]
    assert location.startswith(rp.redirect_uri + "?")
    q = oidc.query(resp)  # type: ignore[arg-type]
    assert q["error"] == error
    assert q["iss"] == ISSUER
    assert q.get("state") == state


def test_unknown_client_gets_error_page(client: FlaskClient, rp: oidc.RP) -> None:
    params = oidc.auth_params(rp, client_id="no-such-client")
    assert_error_page(client.get("/authorize", query_string=params))


def test_missing_client_gets_error_page(client: FlaskClient, rp: oidc.RP) -> None:
    params = oidc.auth_params(rp)
    del params["client_id"]
    assert_error_page(client.get("/authorize", query_string=params))


@pytest.mark.parametrize(
    "uri",
    [
        "https://rp.example/cb/",
        "https://rp.example/cb?x=1",
        "https://rp.example/CB",
        "https://rp.example:8443/cb",
        "https://evil.example/cb",
        "https://rp.example/cb#frag",
        "",
    ],
)
def test_redirect_mismatch_gets_error_page(client: FlaskClient, rp: oidc.RP, uri: str) -> None:
    params = oidc.auth_params(rp, redirect_uri=uri)
    if not uri:
        params.pop("redirect_uri", None)
    assert_error_page(client.get("/authorize", query_string=params))


def test_duplicate_redirect_uri_gets_error_page(client: FlaskClient, rp: oidc.RP) -> None:
    url = "/authorize?" + "&".join(
        f"{k}={v}" for k, v in oidc.auth_params(rp).items() if k != "redirect_uri"
    )
    url += "&redirect_uri=https://rp.example/cb&redirect_uri=https://evil.example/cb"
    assert_error_page(client.get(url))


def test_loopback_redirect_port_may_vary(
    app: Flask, client: FlaskClient, public_rp: oidc.RP
) -> None:
    _, challenge = oidc.pkce()
    for uri in ("http://127.0.0.1:53011/cb", "http://127.0.0.1/cb"):
        params = oidc.auth_params(
            public_rp, redirect_uri=uri, code_challenge=challenge, code_challenge_method="S256"
        )
        resp = client.get("/authorize", query_string=params)
        assert oidc.is_login_redirect(app, resp)
    params = oidc.auth_params(public_rp, redirect_uri="http://127.0.0.1:53011/other")
    assert_error_page(client.get("/authorize", query_string=params))


@pytest.mark.parametrize("rtype", ["token", "id_token", "code id_token", "code token", "none"])
def test_only_code_response_type(client: FlaskClient, rp: oidc.RP, rtype: str) -> None:
    params = oidc.auth_params(rp, response_type=rtype)
    resp = client.get("/authorize", query_string=params)
    assert_error_redirect(resp, rp, "unsupported_response_type", params["state"])


def test_iss_in_success_response(app: Flask, client: FlaskClient, rp: oidc.RP) -> None:
    account = oidc.make_account(app)
    si = oidc.sign_in(app, client, rp, account)
    assert si.redirect["iss"] == ISSUER
    assert si.redirect["state"] == si.state


def test_iss_in_error_response(client: FlaskClient, rp: oidc.RP) -> None:
    params = oidc.auth_params(rp, prompt="none")
    resp = client.get("/authorize", query_string=params)
    assert_error_redirect(resp, rp, "login_required", params["state"])


def test_openid_scope_required(client: FlaskClient, rp: oidc.RP) -> None:
    params = oidc.auth_params(rp, scope="profile email")
    assert_error_redirect(client.get("/authorize", query_string=params), rp, "invalid_scope",
                          params["state"])  # fmt: skip


def test_unknown_scopes_are_ignored(app: Flask, client: FlaskClient, rp: oidc.RP) -> None:
    account = oidc.make_account(app)
    si = oidc.sign_in(app, client, rp, account, scope="openid email frobnicate")
    body = oidc.exchange(client, rp, si).get_json()
    assert body["scope"] == "openid email"


def test_request_objects_not_supported(client: FlaskClient, rp: oidc.RP) -> None:
    params = oidc.auth_params(rp, request="eyJhbGciOiJub25lIn0.e30.")
    resp = client.get("/authorize", query_string=params)
    assert_error_redirect(resp, rp, "request_not_supported", params["state"])


def test_pkce_required_for_public_clients(client: FlaskClient, public_rp: oidc.RP) -> None:
    params = oidc.auth_params(public_rp)
    resp = client.get("/authorize", query_string=params)
    assert_error_redirect(resp, public_rp, "invalid_request", params["state"])


@pytest.mark.parametrize("method", ["plain", None, "s256"])
def test_pkce_plain_or_missing_method_refused(
    client: FlaskClient, rp: oidc.RP, method: str | None
) -> None:
    _, challenge = oidc.pkce()
    params = oidc.auth_params(rp, code_challenge=challenge, code_challenge_method=method)
    resp = client.get("/authorize", query_string=params)
    assert_error_redirect(resp, rp, "invalid_request", params["state"])


def test_prompt_none_without_session_is_login_required(client: FlaskClient, rp: oidc.RP) -> None:
    params = oidc.auth_params(rp, prompt="none")
    resp = client.get("/authorize", query_string=params)
    assert_error_redirect(resp, rp, "login_required", params["state"])


def test_prompt_none_without_consent_is_consent_required(
    app: Flask, client: FlaskClient, rp: oidc.RP
) -> None:
    account = oidc.make_account(app)
    oidc.start_session(app, client, account)
    params = oidc.auth_params(rp, prompt="none")
    resp = client.get("/authorize", query_string=params)
    assert_error_redirect(resp, rp, "consent_required", params["state"])


def test_prompt_none_with_session_and_consent_issues_code(
    app: Flask, client: FlaskClient, rp: oidc.RP
) -> None:
    account = oidc.make_account(app)
    oidc.start_session(app, client, account)
    oidc.grant_consent(app, account, rp.client_id, ["openid", "profile", "email"])
    params = oidc.auth_params(rp, prompt="none")
    resp = client.get("/authorize", query_string=params)
    assert resp.status_code == 303
    q = oidc.query(resp)
    assert q["iss"] == ISSUER and q["state"] == params["state"] and q["code"]


def test_prompt_none_combined_is_invalid(client: FlaskClient, rp: oidc.RP) -> None:
    params = oidc.auth_params(rp, prompt="none login")
    resp = client.get("/authorize", query_string=params)
    assert_error_redirect(resp, rp, "invalid_request", params["state"])


def test_session_and_consent_skip_login(app: Flask, client: FlaskClient, rp: oidc.RP) -> None:
    account = oidc.make_account(app)
    oidc.start_session(app, client, account)
    oidc.grant_consent(app, account, rp.client_id, ["openid", "profile", "email"])
    resp = client.get("/authorize", query_string=oidc.auth_params(rp))
    assert resp.status_code == 303 and "code" in oidc.query(resp)


def test_prompt_login_forces_fresh_login(app: Flask, client: FlaskClient, rp: oidc.RP) -> None:
    account = oidc.make_account(app)
    oidc.start_session(app, client, account)
    oidc.grant_consent(app, account, rp.client_id, ["openid", "profile", "email"])
    resp = client.get("/authorize", query_string=oidc.auth_params(rp, prompt="login"))
    assert oidc.is_login_redirect(app, resp)
    ix = _interaction(app, oidc.interaction_id(resp))
    assert ix["account_id"] is None and ix["prompt"] == ["login"]


def test_prompt_consent_asks_again(app: Flask, client: FlaskClient, rp: oidc.RP) -> None:
    account = oidc.make_account(app)
    oidc.start_session(app, client, account)
    oidc.grant_consent(app, account, rp.client_id, ["openid", "profile", "email"])
    resp = client.get("/authorize", query_string=oidc.auth_params(rp, prompt="consent"))
    ix = _interaction(app, oidc.interaction_id(resp))
    assert ix["account_id"] == account and ix["consented"] is False


def test_more_scopes_ask_consent_again(app: Flask, client: FlaskClient, rp: oidc.RP) -> None:
    account = oidc.make_account(app)
    oidc.start_session(app, client, account)
    oidc.grant_consent(app, account, rp.client_id, ["openid", "email"])
    resp = client.get("/authorize", query_string=oidc.auth_params(rp, scope="openid email phone"))
    ix = _interaction(app, oidc.interaction_id(resp))
    assert ix["scopes"] == ["openid", "email", "phone"]
    assert "phone_number" in ix["claims"]


def test_max_age_forces_login_and_auth_time_is_returned(
    app: Flask, client: FlaskClient, rp: oidc.RP
) -> None:
    account = oidc.make_account(app)
    old = time.time() - 3600
    oidc.start_session(app, client, account, auth_time=old)
    oidc.grant_consent(app, account, rp.client_id, ["openid", "profile", "email"])
    verifier, challenge = oidc.pkce()
    params = oidc.auth_params(rp, max_age="60", code_challenge=challenge,
                              code_challenge_method="S256")  # fmt: skip
    resp = client.get("/authorize", query_string=params)
    ix_id = oidc.interaction_id(resp)
    ix = _interaction(app, ix_id)
    assert ix["account_id"] is None and ix["max_age"] == 60
    fresh = time.time()
    oidc.finish(app, ix_id, account, auth_time=fresh)
    q = oidc.query(client.get(f"/authorize/resume/{ix_id}"))
    si = oidc.SignIn(q["code"], params["state"], params["nonce"], verifier)
    claims = oidc.verify_jwt(client, oidc.exchange(client, rp, si).get_json()["id_token"]).claims
    assert claims["auth_time"] == int(fresh)


def test_max_age_satisfied_by_recent_session(app: Flask, client: FlaskClient, rp: oidc.RP) -> None:
    account = oidc.make_account(app)
    oidc.start_session(app, client, account)
    oidc.grant_consent(app, account, rp.client_id, ["openid", "profile", "email"])
    resp = client.get("/authorize", query_string=oidc.auth_params(rp, max_age="600"))
    assert "code" in oidc.query(resp)


def test_invalid_max_age(client: FlaskClient, rp: oidc.RP) -> None:
    params = oidc.auth_params(rp, max_age="-1")
    assert_error_redirect(client.get("/authorize", query_string=params), rp, "invalid_request",
                          params["state"])  # fmt: skip


def test_login_hint_reaches_interaction(app: Flask, client: FlaskClient, rp: oidc.RP) -> None:
    params = oidc.auth_params(rp, login_hint="bob@corp.example")
    ix = _interaction(app, oidc.interaction_id(client.get("/authorize", query_string=params)))
    assert ix["login_hint"] == "bob@corp.example"
    assert ix["params"]["nonce"] == params["nonce"]


def test_post_authorize_answers_303(app: Flask, client: FlaskClient, rp: oidc.RP) -> None:
    resp = client.post("/authorize", data=oidc.auth_params(rp))
    assert resp.status_code == 303
    params = oidc.auth_params(rp, prompt="none")
    resp = client.post("/authorize", data=params)
    assert_error_redirect(resp, rp, "login_required", params["state"])


def test_resume_uses_stored_request_not_browser_query(
    app: Flask, client: FlaskClient, rp: oidc.RP
) -> None:
    account = oidc.make_account(app)
    params = oidc.auth_params(rp)
    ix_id = oidc.interaction_id(client.get("/authorize", query_string=params))
    oidc.finish(app, ix_id, account)
    resp = client.get(
        f"/authorize/resume/{ix_id}",
        query_string={"redirect_uri": "https://evil.example/cb", "state": "forged"},
    )
    assert resp.headers["Location"].startswith(rp.redirect_uri + "?")
    assert oidc.query(resp)["state"] == params["state"]


def test_resume_only_once_and_only_in_same_browser(
    app: Flask, client: FlaskClient, rp: oidc.RP
) -> None:
    account = oidc.make_account(app)
    ix_id = oidc.interaction_id(client.get("/authorize", query_string=oidc.auth_params(rp)))
    oidc.finish(app, ix_id, account)
    other_browser = app.test_client()
    assert_error_page(other_browser.get(f"/authorize/resume/{ix_id}"))
    assert client.get(f"/authorize/resume/{ix_id}").status_code == 303
    assert_error_page(client.get(f"/authorize/resume/{ix_id}"))


def test_unfinished_interaction_goes_back_to_login(
    app: Flask, client: FlaskClient, rp: oidc.RP
) -> None:
    ix_id = oidc.interaction_id(client.get("/authorize", query_string=oidc.auth_params(rp)))
    resp = client.get(f"/authorize/resume/{ix_id}")
    assert oidc.is_login_redirect(app, resp)
    assert oidc.interaction_id(resp) == ix_id


def test_declined_consent_gets_access_denied(app: Flask, client: FlaskClient, rp: oidc.RP) -> None:
    from idp.interaction import pending as interaction
    from idp.services import ephemeral

    account = oidc.make_account(app)
    params = oidc.auth_params(rp)
    ix_id = oidc.interaction_id(client.get("/authorize", query_string=params))
    with app.app_context():  # what the consent page does on "Deny"
        ix = interaction.Interaction(**ephemeral().get(f"ix:{ix_id}"))
        ix.account_id, ix.auth_time, ix.consented = account, time.time(), False
        interaction.save(ix)
    assert_error_redirect(client.get(f"/authorize/resume/{ix_id}"), rp, "access_denied",
                          params["state"])  # fmt: skip


def test_blocked_account_gets_access_denied(app: Flask, client: FlaskClient, rp: oidc.RP) -> None:
    account = oidc.make_account(app)
    params = oidc.auth_params(rp)
    ix_id = oidc.interaction_id(client.get("/authorize", query_string=params))
    oidc.finish(app, ix_id, account)
    oidc.set_status(app, account, "blocked")
    assert_error_redirect(client.get(f"/authorize/resume/{ix_id}"), rp, "access_denied",
                          params["state"])  # fmt: skip


def test_no_cors_on_authorize(client: FlaskClient, rp: oidc.RP) -> None:
    for method in ("get", "options"):
        resp = getattr(client, method)(
            "/authorize",
            query_string=oidc.auth_params(rp),
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "Access-Control-Allow-Origin" not in resp.headers


def test_error_page_forbids_framing(client: FlaskClient, rp: oidc.RP) -> None:
    resp = client.get("/authorize", query_string=oidc.auth_params(rp, client_id="nope"))
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "junk",
    [
        {"client_id": "x" * 5000},
        {"redirect_uri": "https://rp.example/cb\x00"},
        {"redirect_uri": "http://[::1"},
        {"state": "\"'<script>" * 10},
        {"state": "s" * 5000},
        {"scope": "openid " * 2000},
        {"code_challenge": "short", "code_challenge_method": "S256"},
        {"nonce": "\u00ff\u2603"},
        {"max_age": "9" * 40},
        {"prompt": "none none"},
        {"response_mode": "form_post"},
        {"response_type": 'code"\\'},
        {'x"\\y': "1" * 3000},
        {"code_challenge": 'a"b', "code_challenge_method": "S256"},
        {"prompt": '"', "max_age": '"'},
    ],
)
def test_malformed_input_never_500(client: FlaskClient, rp: oidc.RP, junk: dict[str, str]) -> None:
    params = oidc.auth_params(rp)
    params.update(junk)
    for resp in (client.get("/authorize", query_string=params),
                 client.post("/authorize", data=params)):  # fmt: skip
        assert resp.status_code in (303, 400), resp.get_data(as_text=True)
        if resp.status_code == 303 and "error" in oidc.query(resp):
            assert oidc.query(resp)["iss"] == ISSUER


def test_invalid_utf8_never_500(client: FlaskClient, rp: oidc.RP) -> None:
    base = "&".join(f"{k}={v}" for k, v in oidc.auth_params(rp).items() if k != "state")
    for extra in ("&state=%ff%fe", "&client_id=%c3%28", "&redirect_uri=%ed%a0%80"):
        resp = client.get(f"/authorize?{base}{extra}")
        assert resp.status_code in (303, 400), resp.get_data(as_text=True)


def _interaction(app: Flask, ix_id: str) -> dict[str, object]:
    from idp.services import ephemeral

    with app.app_context():
        data = ephemeral().get(f"ix:{ix_id}")
    assert data is not None
    return data
