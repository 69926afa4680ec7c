"""OIDC connectors against a real, independent OpenID provider (node-oidc-provider).

Each test runs a complete authorization-code round trip through the upstream
process: the connector builds the request, the upstream authenticates the test
user and redirects back, the connector redeems the code over HTTP and validates
the ID token. Defects are produced by the upstream itself (``tamper``: it re-signs
its own ID token with the defect) or by altering the redirect as an attacker would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors import ConfigurationError, ConnectorError, UpstreamIdentity, build
from connectors.oidc import MetadataCache
from tests.support.upstream import Upstream

REDIRECT = "http://localhost/federation/test/callback"
TENANT_A = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
TENANT_B = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
TENANT_C = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"

GOOGLE_ALICE = {"email": "alice@acme.example", "email_verified": True, "hd": "acme.example",
                "given_name": "Alice", "family_name": "Buyer"}


def entra_claims(tid: str, oid: str = "0000-oid-1", edov: bool | None = True) -> dict[str, Any]:
    claims: dict[str, Any] = {"tid": tid, "oid": oid, "email": "erin@acme.example",
                              "employeeId": "E-77", "department": "Purchasing"}
    if edov is not None:
        claims["xms_edov"] = edov
    return claims



@pytest.fixture
def google(upstream: Upstream) -> Any:
    client_id, secret = upstream.register_client(upstream.google_issuer, REDIRECT)
    return build("google", {"issuer": upstream.google_issuer, "client_id": client_id,
                            "hosted_domains": ["acme.example"]}, secret, MetadataCache())


@pytest.fixture
def okta_custom(upstream: Upstream) -> Any:
    client_id, secret = upstream.register_client(upstream.okta_custom_issuer, REDIRECT)
    return build("okta", {"issuer": upstream.okta_custom_issuer, "client_id": client_id},
                 secret, MetadataCache())


def entra(upstream: Upstream, tenants: list[str]) -> Any:
    client_id, secret = upstream.entra_app(REDIRECT)
    return build("microsoft", {"authority": upstream.microsoft_authority, "tenants": tenants,
                               "client_id": client_id}, secret, MetadataCache())


def sign_in(upstream: Upstream, connector: Any, sub: str, user: dict[str, Any],
            alter: Callable[[dict[str, str]], dict[str, str]] | None = None,
            **tamper: Any) -> UpstreamIdentity:
    """One full round trip; ``alter`` edits the redirect back, ``tamper`` the ID token."""
    start = connector.start(REDIRECT, "state-1", login_hint=user.get("email"))
    upstream.login_as(sub, user)
    if tamper:
        upstream.tamper(**tamper)
    back = upstream.authorize(start.url)
    assert back.startswith(REDIRECT + "?")
    params = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    assert params["state"] == "state-1"
    if alter is not None:
        params = alter(params)
    return connector.callback(params, start.pending, REDIRECT, lambda k, t: True)


def refused(code: str, fn: Callable[[], Any]) -> None:
    with pytest.raises(ConnectorError) as info:
        fn()
    assert info.value.code == code, str(info.value)


# -- the authorization request -----------------------------------------------------

def test_request_has_pkce_s256_nonce_state_and_hd(google: Any) -> None:
    start = google.start(REDIRECT, "st", login_hint="alice@acme.example")
    query = parse_qs(urlsplit(start.url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["nonce"] == [start.pending["nonce"]]
    assert query["state"] == ["st"]
    assert query["hd"] == ["acme.example"]
    assert query["response_type"] == ["code"]
    assert "code_verifier" in start.pending and start.pending["code_verifier"] not in start.url


# -- happy paths ---------------------------------------------------------------------

def test_google_workspace_user(upstream: Upstream, google: Any) -> None:
    ident = sign_in(upstream, google, "g-alice", GOOGLE_ALICE)
    assert (ident.issuer, ident.subject) == (upstream.google_issuer, "g-alice")
    assert ident.email == "alice@acme.example" and ident.email_verified
    assert ident.hosted_domain == "acme.example"
    assert ident.claims["given_name"] == "Alice"


def test_okta_custom_server_groups(upstream: Upstream, okta_custom: Any) -> None:
    ident = sign_in(upstream, okta_custom, "okta-dave",
                    {"email": "dave@acme.example", "email_verified": True,
                     "groups": ["Purchasing", "Everyone"]})
    assert ident.issuer == upstream.okta_custom_issuer
    assert ident.claims["groups"] == ["Purchasing", "Everyone"]
    assert okta_custom.server_kind == "custom"


def test_okta_org_server(upstream: Upstream) -> None:
    client_id, secret = upstream.register_client(upstream.okta_org_issuer, REDIRECT)
    okta = build("okta", {"issuer": upstream.okta_org_issuer, "client_id": client_id}, secret,
                 MetadataCache())
    assert okta.server_kind == "org"
    ident = sign_in(upstream, okta, "okta-org-1", {"email": "o@acme.example",
                                                   "email_verified": True})
    assert ident.issuer == upstream.okta_org_issuer


def test_okta_token_of_the_org_server_is_refused_by_a_custom_server_connector(
    upstream: Upstream, okta_custom: Any
) -> None:
    refused("invalid_issuer", lambda: sign_in(
        upstream, okta_custom, "okta-x", {"email": "x@acme.example"},
        claims={"iss": upstream.okta_org_issuer}))


def test_okta_issuer_shape_is_checked() -> None:
    with pytest.raises(ConfigurationError):
        build("okta", {"issuer": "https://acme.okta.example/some/path", "client_id": "c"},
              "s", MetadataCache())


def test_entra_single_tenant(upstream: Upstream) -> None:
    conn = entra(upstream, [TENANT_A])
    ident = sign_in(upstream, conn, "pairwise-sub-1", entra_claims(TENANT_A))
    assert ident.issuer == upstream.tenant_issuer(TENANT_A)
    assert ident.subject == f"{TENANT_A}/0000-oid-1"  # keyed on tid + oid, not sub
    assert ident.email == "erin@acme.example"


def test_entra_multi_tenant_uses_tenant_specific_issuer(upstream: Upstream) -> None:
    conn = entra(upstream, [TENANT_A, TENANT_B])
    assert conn.discovery_issuer() == upstream.microsoft_authority + "/{tenantid}/v2.0"
    ident = sign_in(upstream, conn, "pairwise-sub-2", entra_claims(TENANT_B, "oid-b"))
    assert ident.issuer == upstream.tenant_issuer(TENANT_B)
    assert ident.subject == f"{TENANT_B}/oid-b"


def test_entra_email_unverified_without_xms_edov(upstream: Upstream) -> None:
    conn = entra(upstream, [TENANT_A])
    missing = sign_in(upstream, conn, "s-1", entra_claims(TENANT_A, edov=None))
    false = sign_in(upstream, conn, "s-2", entra_claims(TENANT_A, edov=False))
    assert missing.email is None and not missing.email_verified
    assert false.email is None and not false.email_verified
    assert missing.claims["email"] == "erin@acme.example"  # seen, but not trusted


# -- negatives: Microsoft tenants ----------------------------------------------------

def test_entra_other_tenant_refused_by_iss_parameter(upstream: Upstream) -> None:
    conn = entra(upstream, [TENANT_A, TENANT_B])
    refused("invalid_iss", lambda: sign_in(upstream, conn, "s-c", entra_claims(TENANT_C)))


def test_entra_other_tenant_refused_by_tid(upstream: Upstream) -> None:
    conn = entra(upstream, [TENANT_A, TENANT_B])

    def drop_iss(p: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in p.items() if k != "iss"}  # Entra sends no iss

    refused("tenant_not_allowed",
            lambda: sign_in(upstream, conn, "s-c2", entra_claims(TENANT_C), alter=drop_iss))


def test_entra_token_with_allowed_tid_but_other_issuer_refused(upstream: Upstream) -> None:
    conn = entra(upstream, [TENANT_A, TENANT_B])
    refused("invalid_issuer", lambda: sign_in(
        upstream, conn, "s-x", entra_claims(TENANT_A), claims={"tid": TENANT_B}))


def test_entra_tenant_ids_must_be_guids() -> None:
    with pytest.raises(ConfigurationError):
        build("microsoft", {"tenants": ["common"], "client_id": "c"}, "s", MetadataCache())


# -- negatives: Google ---------------------------------------------------------------

def test_google_consumer_account_without_hd_refused(upstream: Upstream, google: Any) -> None:
    refused("hosted_domain_mismatch", lambda: sign_in(
        upstream, google, "g-bob", {"email": "bob@gmail.com", "email_verified": True}))


def test_google_other_workspace_refused(upstream: Upstream, google: Any) -> None:
    refused("hosted_domain_mismatch", lambda: sign_in(
        upstream, google, "g-eve", {"email": "eve@evil.example", "email_verified": True,
                                    "hd": "evil.example"}))


def test_google_consumer_domain_cannot_be_configured() -> None:
    with pytest.raises(ConfigurationError):
        build("google", {"client_id": "c", "hosted_domains": ["gmail.com"]}, "s",
              MetadataCache())
    with pytest.raises(ConfigurationError):
        build("google", {"client_id": "c"}, "s", MetadataCache())


# -- negatives: the ID token -----------------------------------------------------------

@pytest.mark.parametrize(
    ("defect", "code"),
    [
        ({"claims": {"iss": "https://evil.example"}}, "invalid_issuer"),
        ({"claims": {"aud": "someone-else"}}, "invalid_audience"),
        ({"claims": {"azp": "someone-else"}}, "invalid_audience"),
        ({"claims": {"exp": 1_000_000_000}}, "expired"),
        ({"claims": {"iat": 4_000_000_000}}, "invalid_iat"),
        ({"claims": {"nbf": 4_000_000_000}}, "not_yet_valid"),
        ({"claims": {"nonce": "another-nonce"}}, "nonce_mismatch"),
        ({"remove": ["nonce"]}, "nonce_mismatch"),
        ({"remove": ["exp"]}, "expired"),
        ({"alg": "none"}, "alg_not_allowed"),
        ({"alg": "HS256"}, "alg_not_allowed"),
        ({"key": "foreign-same-kid"}, "bad_signature"),
        ({"key": "foreign-new-kid"}, "unknown_key"),
        ({"header": {"crit": ["exp"]}}, "unknown_crit"),
        ({"claims": {"pad": "x" * 20000}}, "token_too_large"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_id_token_defects_refused(upstream: Upstream, google: Any, defect: dict[str, Any],
                                  code: str) -> None:
    refused(code, lambda: sign_in(upstream, google, "g-alice", GOOGLE_ALICE, **defect))


def test_embedded_jwk_header_is_ignored(upstream: Upstream, google: Any) -> None:
    # A token signed by a foreign key that carries that key in a "jwk" header must not
    # verify: keys come only from the provider's jwks_uri.
    refused("bad_signature", lambda: sign_in(
        upstream, google, "g-alice", GOOGLE_ALICE, key="foreign-same-kid",
        header={"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}, "jku": "https://evil.example"}))


# -- negatives: the authorization response ------------------------------------------------

def test_missing_iss_refused_when_announced(upstream: Upstream, google: Any) -> None:
    refused("missing_iss", lambda: sign_in(
        upstream, google, "g-alice", GOOGLE_ALICE,
        alter=lambda p: {k: v for k, v in p.items() if k != "iss"}))


def test_mix_up_iss_refused(upstream: Upstream, google: Any) -> None:
    refused("invalid_iss", lambda: sign_in(
        upstream, google, "g-alice", GOOGLE_ALICE,
        alter=lambda p: {**p, "iss": upstream.okta_org_issuer}))


def test_upstream_error_response(google: Any) -> None:
    start = google.start(REDIRECT, "st")
    refused("upstream_denied", lambda: google.callback(
        {"error": "access_denied", "state": "st", "iss": google.issuer}, start.pending,
        REDIRECT, lambda k, t: True))


def test_code_cannot_be_redeemed_with_another_verifier(upstream: Upstream, google: Any) -> None:
    start = google.start(REDIRECT, "st")
    upstream.login_as("g-alice", GOOGLE_ALICE)
    back = upstream.authorize(start.url)
    params = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    forged = {**start.pending, "code_verifier": "x" * 64}
    refused("token_error", lambda: google.callback(params, forged, REDIRECT, lambda k, t: 1))


def test_code_is_single_use(upstream: Upstream, google: Any) -> None:
    start = google.start(REDIRECT, "st")
    upstream.login_as("g-alice", GOOGLE_ALICE)
    params = {k: v[0] for k, v in parse_qs(urlsplit(upstream.authorize(start.url)).query).items()}
    google.callback(params, start.pending, REDIRECT, lambda k, t: True)
    refused("token_error", lambda: google.callback(params, start.pending, REDIRECT,
                                                   lambda k, t: True))


# -- discovery and keys ------------------------------------------------------------------

def test_discovery_issuer_must_match(upstream: Upstream) -> None:
    client_id, secret = upstream.register_client(upstream.google_issuer, REDIRECT)
    # The okta org discovery document lives at another issuer than the one configured.
    conn = build("oidc", {"issuer": upstream.okta_org_issuer + "/oauth2/default/",
                          "client_id": client_id}, secret, MetadataCache())
    refused("invalid_issuer", lambda: conn.start(REDIRECT, "s"))


def test_plain_http_issuer_refused_unless_loopback() -> None:
    with pytest.raises(ConfigurationError):
        build("oidc", {"issuer": "http://idp.example", "client_id": "c"}, "s", MetadataCache())


def test_key_rotation_refetches_jwks(upstream: Upstream) -> None:
    client_id, secret = upstream.register_client(upstream.google_issuer, REDIRECT)
    cache = MetadataCache()
    conn = build("google", {"issuer": upstream.google_issuer, "client_id": client_id,
                            "hosted_domains": ["acme.example"]}, secret, cache)
    sign_in(upstream, conn, "g-alice", GOOGLE_ALICE)  # caches the JWKS
    new_kid = upstream.rotate("google")
    jwks_uri = conn.metadata()["jwks_uri"]
    assert new_kid not in {k.get("kid") for k in cache.jwks(jwks_uri)}
    ident = sign_in(upstream, conn, "g-alice", GOOGLE_ALICE)
    assert ident.subject == "g-alice"
    assert new_kid in {k.get("kid") for k in cache.jwks(jwks_uri)}


def test_unknown_kid_refetch_is_rate_limited(upstream: Upstream, google: Any) -> None:
    jwks_uri = google.metadata()["jwks_uri"]
    assert google.cache.refresh_jwks(jwks_uri) is not None
    assert google.cache.refresh_jwks(jwks_uri) is None  # at most once per min_refresh


def test_unreachable_upstream_is_a_connector_error() -> None:
    conn = build("oidc", {"issuer": "http://127.0.0.1:9", "client_id": "c"}, "s",
                 MetadataCache())
    refused("upstream_unreachable", lambda: conn.start(REDIRECT, "s"))



# -- claims only from UserInfo (OIDC Core 5.3, 5.4) ------------------------------------
# ``upstream.plain_issuer`` is node-oidc-provider in its default claims configuration:
# with an access token issued, the ID token carries no email or profile claims.

PLAIN_PAT = {"email": "pat@acme.example", "email_verified": True, "given_name": "Pat",
             "family_name": "Plain", "locale": "de-CH"}


def plain(upstream: Upstream, **metadata: Any) -> Any:
    client_id, secret = upstream.register_client(upstream.plain_issuer, REDIRECT, **metadata)
    return build("oidc", {"issuer": upstream.plain_issuer, "client_id": client_id}, secret,
                 MetadataCache())


def test_default_provider_keeps_email_and_names_out_of_the_id_token(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = plain(upstream)
    monkeypatch.setattr(connector, "lacks_claims", lambda claims: False)
    ident = sign_in(upstream, connector, "p-pat", PLAIN_PAT)
    assert ident.email is None
    assert "email" not in ident.claims and "given_name" not in ident.claims


def test_claims_missing_from_the_id_token_come_from_userinfo(upstream: Upstream) -> None:
    ident = sign_in(upstream, plain(upstream), "p-pat", PLAIN_PAT)
    assert (ident.issuer, ident.subject) == (upstream.plain_issuer, "p-pat")
    assert ident.email == "pat@acme.example" and ident.email_verified
    assert ident.claims["given_name"] == "Pat" and ident.claims["family_name"] == "Plain"
    assert ident.claims["iss"] == upstream.plain_issuer  # protocol claims stay the token's


def test_userinfo_unverified_email_is_not_trusted(upstream: Upstream) -> None:
    ident = sign_in(upstream, plain(upstream), "p-unv",
                    {**PLAIN_PAT, "email_verified": False})
    assert ident.email is None and not ident.email_verified


def test_userinfo_of_another_subject_is_refused(upstream: Upstream) -> None:
    connector = plain(upstream)
    start = connector.start(REDIRECT, "state-1")
    upstream.login_as("p-pat", PLAIN_PAT)
    back = upstream.authorize(start.url)
    params = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    upstream.tamper_userinfo(sub="p-mallory")
    with pytest.raises(ConnectorError) as info:
        connector.callback(params, start.pending, REDIRECT, lambda k, t: True)
    assert info.value.code == "userinfo_subject_mismatch"
    assert "5.3.2" in str(info.value)


def test_signed_userinfo_is_verified_with_the_providers_keys(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = plain(upstream, userinfo_signed_response_alg="RS256")
    signed: list[bytes] = []
    verify = connector.validate_signed_userinfo

    def spy(body: bytes, claims: Any, meta: Any) -> Any:
        signed.append(body)
        return verify(body, claims, meta)

    monkeypatch.setattr(connector, "validate_signed_userinfo", spy)
    ident = sign_in(upstream, connector, "p-signed", PLAIN_PAT)
    assert len(signed) == 1 and signed[0].count(b".") == 2  # a compact JWS
    assert ident.email == "pat@acme.example" and ident.email_verified
    assert ident.claims["given_name"] == "Pat"


def test_signed_userinfo_of_another_subject_is_refused(upstream: Upstream) -> None:
    connector = plain(upstream, userinfo_signed_response_alg="RS256")
    start = connector.start(REDIRECT, "state-1")
    upstream.login_as("p-pat", PLAIN_PAT)
    back = upstream.authorize(start.url)
    params = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    upstream.tamper_userinfo(sub="p-mallory")  # re-signed with the provider's own key
    refused("userinfo_subject_mismatch",
            lambda: connector.callback(params, start.pending, REDIRECT, lambda k, t: True))


def test_userinfo_not_asked_when_the_id_token_has_the_claims(
    upstream: Upstream, google: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(google, "complete_from_userinfo",
                        lambda claims, tokens, meta: calls.append("asked") or dict(claims))
    sign_in(upstream, google, "g-alice", GOOGLE_ALICE)
    assert calls == []


def test_entra_never_asks_userinfo() -> None:
    connector = build("microsoft", {"authority": "https://login.example", "tenants": [TENANT_A],
                                    "client_id": "c"}, "s", MetadataCache())
    assert connector.lacks_claims({"sub": "x"}) is False


def test_okta_asks_userinfo_for_missing_groups() -> None:
    okta = build("okta", {"issuer": "https://acme.okta.example", "client_id": "c"}, "s",
                 MetadataCache())
    full = {"email": "a@b.example", "email_verified": True, "name": "A"}
    assert okta.lacks_claims(full) is True
    assert okta.lacks_claims({**full, "groups": []}) is False


# -- a new upstream sign-in (fresh_code_every_sign_in, prompt=login) --------------------

def test_forced_start_asks_a_new_sign_in_and_checks_auth_time(
    upstream: Upstream, google: Any
) -> None:
    start = google.start(REDIRECT, "state-1", force=True)
    query = parse_qs(urlsplit(start.url).query)
    assert query["prompt"] == ["login"] and query["max_age"] == ["0"]
    upstream.login_as("g-alice", GOOGLE_ALICE)
    back = upstream.authorize(start.url)
    params = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    ident = google.callback(params, start.pending, REDIRECT, lambda k, t: True)
    assert ident.subject == "g-alice"


def test_forced_sign_in_with_an_old_auth_time_is_refused(upstream: Upstream, google: Any) -> None:
    start = google.start(REDIRECT, "state-1", force=True)
    upstream.login_as("g-alice", GOOGLE_ALICE)
    upstream.tamper(claims={"auth_time": 1_000_000_000})
    back = upstream.authorize(start.url)
    params = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    refused("stale_authentication",
            lambda: google.callback(params, start.pending, REDIRECT, lambda k, t: True))
