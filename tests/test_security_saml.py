"""SECURITY.md, SAML clauses not pinned down elsewhere:

* "unknown client ... gives an error page, never a redirect" at the SAML single
  logout endpoint: a LogoutRequest or LogoutResponse from an SP that is not registered
  gets an HTML error page, no redirect and no auto-posting form, on both bindings;
* "DEFLATE input capped in size" at the single logout endpoint of our IdP, and for the
  SAML connector (which accepts only the POST binding: a deflated or oversized
  SAMLResponse is refused, never inflated)."""

from __future__ import annotations

import base64
import re
import zlib
from urllib.parse import parse_qs, quote_plus, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from onelogin.saml2.constants import OneLogin_Saml2_Constants as Const
from werkzeug.test import TestResponse

from connectors import ConnectorError, build
from connectors.saml import (
    MAX_RESPONSE_BYTES,
    SamlConnector,
    generate_sp_keypair,
    parse_idp_metadata,
)
from idp.saml.xmlsafe import MAX_XML_BYTES
from tests.support import oidc, saml_flow
from tests.support.saml_idp import SamlIdp
from tests.support.saml_sp import ServiceProvider

ENTITY = "http://localhost/federation/c1/metadata"
ACS = "http://localhost/federation/c1/acs"


@pytest.fixture(autouse=True)
def _login_endpoint(app: Flask) -> None:
    oidc.ensure_login_endpoint(app)


def assert_error_page(resp: TestResponse) -> None:
    body = resp.get_data(as_text=True)
    assert 400 <= resp.status_code < 500, (resp.status_code, body[:300])
    assert resp.mimetype == "text/html"
    assert "Location" not in resp.headers
    # no auto-posting form and no message for anyone (the page's language links
    # repeat the query, to this same page: not a destination)
    assert not re.search(r"<form[^>]*method=.?post", body, re.IGNORECASE), body
    assert not re.search(r'name="SAML(Request|Response)"', body), body
    assert not re.search(r'(href|action)="https?://', body.split("</header>", 1)[-1]), body


def deflate(data: bytes) -> str:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(c.compress(data) + c.flush()).decode()


def inflate_query(url: str, param: str) -> bytes:
    value = parse_qs(urlsplit(url).query)[param][0]
    return zlib.decompress(base64.b64decode(value), -15)


def test_logout_from_an_unregistered_sp_gets_an_error_page(
    app: Flask, client: FlaskClient
) -> None:
    saml_flow.make_sp(app, client, host="shop.example")  # a registered one exists
    stranger = ServiceProvider(saml_flow.idp_metadata(client), host="stranger.example")
    url, _ = stranger.logout_redirect("ann", None, Const.NAMEID_PERSISTENT,
                                      relay_state="https://stranger.example/bye")
    assert_error_page(saml_flow.get_url(client, url))
    # the same LogoutRequest on the POST binding
    xml = inflate_query(url, "SAMLRequest")
    posted = client.post("/saml/slo", data={"SAMLRequest": base64.b64encode(xml).decode(),
                                            "RelayState": "https://stranger.example/bye"})
    # a cross-site POST (no cookies of ours) is first re-delivered to this endpoint
    # (idp.saml.bounce): that redirect stays on /saml/slo, then the error page
    if posted.status_code == 303:
        assert urlsplit(posted.headers["Location"]).path == "/saml/slo"
        assert not urlsplit(posted.headers["Location"]).netloc
        posted = client.get(posted.headers["Location"])
    assert_error_page(posted)
    # a LogoutResponse nobody asked for, from the stranger
    response_xml = (
        '<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" '
        'IssueInstant="2026-01-01T00:00:00Z" InResponseTo="_nothing">'
        f"<saml:Issuer>{stranger.entity_id}</saml:Issuer>"
        '<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
        "</samlp:Status></samlp:LogoutResponse>").encode()
    resp = client.get("/saml/slo?SAMLResponse=" + quote_plus(deflate(response_xml)))
    assert_error_page(resp)


def test_slo_deflate_bomb_is_refused(app: Flask, client: FlaskClient) -> None:
    """A small deflated LogoutRequest that inflates far beyond the cap is refused
    with an error page, on the registered SP's own request too."""
    shop = saml_flow.make_sp(app, client, host="shop.example")
    url, _ = shop.logout_redirect("ann", None, Const.NAMEID_PERSISTENT)
    xml = inflate_query(url, "SAMLRequest")
    bomb = xml.replace(b"</saml:Issuer>", b"</saml:Issuer>" + b" " * (50 * MAX_XML_BYTES), 1)
    assert bomb != xml
    packed = deflate(bomb)
    assert len(packed) < MAX_XML_BYTES  # small on the wire
    resp = client.get("/saml/slo?SAMLRequest=" + quote_plus(packed))
    assert_error_page(resp)
    assert "too large" in resp.get_data(as_text=True)


@pytest.fixture(scope="module")
def upstream() -> SamlIdp:
    return SamlIdp()


@pytest.fixture
def connector(upstream: SamlIdp) -> SamlConnector:
    key, cert = generate_sp_keypair(ENTITY)
    settings = parse_idp_metadata(upstream.metadata())
    settings["sp_cert"] = cert
    conn = build("saml", settings, key, None, {"entity_id": ENTITY, "acs_url": ACS})
    assert isinstance(conn, SamlConnector)
    return conn


def test_connector_never_inflates_and_caps_the_response(connector: SamlConnector,
                                                        upstream: SamlIdp) -> None:  # fmt: skip
    """The connector's ACS takes the POST binding only: a valid signed response sent
    deflated is refused, as is one padded past :data:`MAX_RESPONSE_BYTES`; the same
    response sent plainly is accepted (so the refusals are about the encoding)."""
    seen: set[str] = set()

    def first_use(key: str, ttl: int) -> bool:
        if key in seen:
            return False
        seen.add(key)
        return True

    def attempt(encoded: str) -> object:
        start = connector.start(ACS, "relay-1")
        request = upstream.read_request(start.url)
        good = upstream.signed_response(request, ENTITY, "alice@acme.example", {})
        value = encoded.replace("{good}", good) if "{good}" in encoded else encoded
        if encoded == "deflated":
            value = deflate(base64.b64decode(good))
        elif encoded == "padded":
            value = good + "\n" * (MAX_RESPONSE_BYTES + 1 - len(good))
        return connector.callback({"SAMLResponse": value, "RelayState": "relay-1"},
                                  start.pending, ACS, first_use)  # fmt: skip

    for encoded in ("deflated", "padded"):
        with pytest.raises(ConnectorError):
            attempt(encoded)
    assert attempt("{good}") is not None
