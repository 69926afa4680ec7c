"""Every malformed or hostile AuthnRequest gets an error page and nothing is posted
anywhere (SECURITY.md, SAML): unknown SP, unregistered ACS URL, DTDs and entities,
oversized input, unsigned when signing is required, rsa-sha1, bad signatures,
signature wrapping, stale or misaddressed requests, and replays."""

from __future__ import annotations

import base64
import zlib
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_plus

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants as Const
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from werkzeug.test import TestResponse

from tests.support import oidc, saml_flow
from tests.support.saml_sp import ServiceProvider, keypair

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"


@pytest.fixture(autouse=True)
def _login_endpoint(app: Flask) -> None:
    oidc.ensure_login_endpoint(app)


def deflated(xml: str | bytes) -> str:
    data = xml.encode() if isinstance(xml, str) else xml
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(c.compress(data) + c.flush()).decode()


def redirect_query(
    xml: str | bytes,
    *,
    relay_state: str | None = "/r",
    key: str | None = None,
    sig_alg: str = Const.RSA_SHA256,
) -> str:
    """An HTTP-Redirect binding query, signed with ``key`` when given."""
    query = "SAMLRequest=" + quote_plus(deflated(xml))
    if relay_state is not None:
        query += "&RelayState=" + quote_plus(relay_state)
    if key is None:
        return query
    query += "&SigAlg=" + quote_plus(sig_alg)
    private = serialization.load_pem_private_key(key.encode(), None)
    digest = hashes.SHA1() if sig_alg == Const.RSA_SHA1 else hashes.SHA256()
    signature = private.sign(query.encode(), padding.PKCS1v15(), digest)  # type: ignore[union-attr]
    return query + "&Signature=" + quote_plus(base64.b64encode(signature).decode())


def assert_refused(resp: TestResponse, *, contains: str | None = None) -> None:
    """An error page: 4xx HTML, no form, no SAMLResponse, nothing for any ACS."""
    body = resp.get_data(as_text=True)
    assert 400 <= resp.status_code < 500, (resp.status_code, body[:300])
    assert resp.mimetype == "text/html"
    assert "<form" not in body and "SAMLResponse" not in body
    assert "Location" not in resp.headers
    if contains:
        assert contains in body, body


def request_xml(sp: ServiceProvider, **attrs: str | None) -> str:
    xml, _ = sp.authn_request_xml()
    root = etree.fromstring(xml.encode())
    for name, value in attrs.items():
        if value is None:
            root.attrib.pop(name, None)
        else:
            root.set(name, value)
    return etree.tostring(root).decode()


def test_unknown_sp(app: Flask, client: FlaskClient) -> None:
    sp = ServiceProvider(saml_flow.idp_metadata(client), host="stranger.example")
    resp, _ = saml_flow.start(client, sp)
    assert_refused(resp, contains="not registered")


def test_unregistered_acs_url_gets_an_error_page_and_no_post(
    app: Flask, client: FlaskClient
) -> None:
    sp = saml_flow.make_sp(app, client)
    xml = request_xml(sp, AssertionConsumerServiceURL="https://evil.example/saml/acs")
    resp = client.get("/saml/sso?" + redirect_query(xml))
    assert_refused(resp, contains="AssertionConsumerServiceURL")
    assert "evil.example" not in resp.get_data(as_text=True)


def test_registered_acs_url_by_index_and_unknown_index(app: Flask, client: FlaskClient) -> None:
    sp = saml_flow.make_sp(app, client)
    xml = request_xml(sp, AssertionConsumerServiceURL=None, AssertionConsumerServiceIndex="1")
    assert oidc.is_login_redirect(app, client.get("/saml/sso?" + redirect_query(xml)))
    xml = request_xml(sp, AssertionConsumerServiceURL=None, AssertionConsumerServiceIndex="7")
    assert_refused(client.get("/saml/sso?" + redirect_query(xml)))


def test_artifact_binding_for_the_response_is_refused(app: Flask, client: FlaskClient) -> None:
    sp = saml_flow.make_sp(app, client)
    xml = request_xml(sp, ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact")
    assert_refused(client.get("/saml/sso?" + redirect_query(xml)))


@pytest.mark.parametrize(
    "prolog",
    [
        '<!DOCTYPE samlp:AuthnRequest [<!ENTITY x "expanded">]>',
        '<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">',
        '<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
    ],
)
def test_dtds_and_entities_are_refused(app: Flask, client: FlaskClient, prolog: str) -> None:
    sp = saml_flow.make_sp(app, client)
    xml = request_xml(sp)
    evil = prolog + xml
    assert_refused(client.get("/saml/sso?" + redirect_query(evil)), contains="document type")
    assert_refused(
        saml_flow.post(
            client, "/saml/sso", {"SAMLRequest": base64.b64encode(evil.encode()).decode()}
        ),
        contains="document type",
    )


def test_oversized_inflated_request_is_refused(app: Flask, client: FlaskClient) -> None:
    sp = saml_flow.make_sp(app, client)
    xml = request_xml(sp)
    padded = xml.replace("<saml:Issuer", "<!--" + "A" * 200_000 + "--><saml:Issuer", 1)
    assert len(deflated(padded)) < 4000  # small on the wire, large once inflated
    assert_refused(client.get("/saml/sso?" + redirect_query(padded)), contains="too large")


def test_oversized_posted_request_is_refused(app: Flask, client: FlaskClient) -> None:
    saml_flow.make_sp(app, client)
    huge = base64.b64encode(b"<a>" + b"x" * 100_000 + b"</a>").decode()
    assert_refused(saml_flow.post(client, "/saml/sso", {"SAMLRequest": huge}), contains="too large")


@pytest.mark.parametrize(
    "query",
    [
        "",
        "SAMLRequest=%%%",
        "SAMLRequest=" + quote_plus(base64.b64encode(b"not deflated at all").decode()),
        "SAMLRequest=" + quote_plus(deflated("<not-saml/>")),
        "SAMLRequest=" + quote_plus(deflated("<unclosed")),
        "SAMLRequest=" + quote_plus(deflated(b"\xff\xfe<bad/>")),
        "SAMLRequest=a&SAMLRequest=b",
        "SAMLRequest=" + quote_plus(deflated("<x/>")) + "&RelayState=" + "r" * 2000,
    ],
)
def test_garbage_is_refused_without_a_server_error(
    app: Flask, client: FlaskClient, query: str
) -> None:
    saml_flow.make_sp(app, client)
    assert_refused(client.get("/saml/sso?" + query))


def test_request_without_issuer_or_version_is_refused(app: Flask, client: FlaskClient) -> None:
    sp = saml_flow.make_sp(app, client)
    assert_refused(client.get("/saml/sso?" + redirect_query(request_xml(sp, Version="1.1"))))
    root = etree.fromstring(request_xml(sp).encode())
    for issuer in root.findall("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer"):
        root.remove(issuer)
    assert_refused(client.get("/saml/sso?" + redirect_query(etree.tostring(root))))


def test_stale_or_future_or_misaddressed_requests_are_refused(
    app: Flask, client: FlaskClient
) -> None:
    sp = saml_flow.make_sp(app, client)
    old = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_refused(client.get("/saml/sso?" + redirect_query(request_xml(sp, IssueInstant=old))))
    assert_refused(client.get("/saml/sso?" + redirect_query(request_xml(sp, IssueInstant=future))))
    elsewhere = request_xml(sp, Destination="https://other-idp.example/sso")
    assert_refused(client.get("/saml/sso?" + redirect_query(elsewhere)), contains="Destination")


def test_replayed_request_id_is_refused(app: Flask, client: FlaskClient) -> None:
    sp = saml_flow.make_sp(app, client)
    url, _ = sp.login_redirect()
    assert oidc.is_login_redirect(app, saml_flow.get_url(client, url))
    assert_refused(saml_flow.get_url(client, url), contains="already used")
    assert_refused(saml_flow.get_url(app.test_client(), url), contains="already used")


def test_unsigned_request_refused_when_the_sp_must_sign(app: Flask, client: FlaskClient) -> None:
    sp = saml_flow.make_sp(app, client, {"require_signed_requests": True})
    resp, _ = saml_flow.start(client, sp)
    assert_refused(resp, contains="must sign")
    form, _ = sp.login_post(sign=False)
    assert_refused(saml_flow.post(client, "/saml/sso", form), contains="must sign")


def test_signed_requests_are_verified_redirect_and_post(app: Flask, client: FlaskClient) -> None:
    sp = saml_flow.make_sp(app, client, {"require_signed_requests": True}, sign_requests=True)
    resp, _ = saml_flow.start(client, sp)
    assert oidc.is_login_redirect(app, resp)
    form, _ = sp.login_post()
    assert oidc.is_login_redirect(app, saml_flow.post(client, "/saml/sso", form))


def test_metadata_saying_authn_requests_signed_makes_signatures_required(
    app: Flask, client: FlaskClient
) -> None:
    sp = saml_flow.make_sp(app, client, sign_requests=True)
    unsigned = ServiceProvider(sp.idp_metadata, sign_requests=False)
    resp, _ = saml_flow.start(client, unsigned)
    assert_refused(resp, contains="must sign")


def test_rsa_sha1_is_refused(app: Flask, client: FlaskClient) -> None:
    sp = saml_flow.make_sp(app, client, sign_requests=True)
    key, cert = keypair(sp.host)
    query = redirect_query(request_xml(sp), key=key, sig_alg=Const.RSA_SHA1)
    assert_refused(client.get("/saml/sso?" + query), contains="rsa-sha1")
    xml = request_xml(sp)
    signed = OneLogin_Saml2_Utils.add_sign(
        xml, key, cert, sign_algorithm=Const.RSA_SHA1, digest_algorithm=Const.SHA1
    )
    resp = saml_flow.post(client, "/saml/sso", {"SAMLRequest": base64.b64encode(signed).decode()})
    assert_refused(resp, contains="rsa-sha1")


def test_tampered_or_foreign_signatures_are_refused(app: Flask, client: FlaskClient) -> None:
    sp = saml_flow.make_sp(app, client, sign_requests=True)
    key, _ = keypair(sp.host)
    query = redirect_query(request_xml(sp), key=key, relay_state="/a")
    assert_refused(client.get("/saml/sso?" + query.replace("RelayState=%2Fa", "RelayState=%2Fb")))
    stranger_key, _ = keypair("stranger.example")
    query = redirect_query(request_xml(sp), key=stranger_key)
    assert_refused(client.get("/saml/sso?" + query), contains="invalid")


def test_signature_wrapping_is_refused(app: Flask, client: FlaskClient) -> None:
    """XSW: the SP's genuinely signed request moved into Extensions of a forged one
    with another ACS URL and ID; the signature no longer signs the root."""
    sp = saml_flow.make_sp(app, client, {"require_signed_requests": True}, sign_requests=True)
    key, cert = keypair(sp.host)
    signed = etree.fromstring(
        OneLogin_Saml2_Utils.add_sign(
            request_xml(sp),
            key,
            cert,
            sign_algorithm=Const.RSA_SHA256,
            digest_algorithm=Const.SHA256,
        )
    )
    forged = etree.fromstring(request_xml(sp, ID="_forged", ForceAuthn="false"))
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    extensions.append(signed)
    forged.insert(1, extensions)
    resp = saml_flow.post(
        client, "/saml/sso", {"SAMLRequest": base64.b64encode(etree.tostring(forged)).decode()}
    )
    assert_refused(resp)

    # the signature moved next to a forged root keeps pointing at the original ID
    sig = signed.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    forged = etree.fromstring(request_xml(sp, ID="_other"))
    forged.insert(1, sig)
    resp = saml_flow.post(
        client, "/saml/sso", {"SAMLRequest": base64.b64encode(etree.tostring(forged)).decode()}
    )
    assert_refused(resp, contains="reference")
