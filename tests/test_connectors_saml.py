"""The SAML connector (python3-saml SP) against a test IdP that signs with xmlsec."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants as Const
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from connectors import ConfigurationError, ConnectorError, UpstreamIdentity, build
from connectors.saml import SamlConnector, generate_sp_keypair, parse_idp_metadata
from tests.support.saml_idp import NS, AuthnRequest, SamlIdp

ENTITY = "http://localhost/federation/c1/metadata"
ACS = "http://localhost/federation/c1/acs"
SP_KEY, SP_CERT = generate_sp_keypair(ENTITY)
ALICE = "alice@acme.example"


class Seen:
    """A replay guard like the ephemeral store's atomic add."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def __call__(self, key: str, ttl: int) -> bool:
        if key in self.keys:
            return False
        self.keys.add(key)
        return True


@pytest.fixture(scope="module")
def idp() -> SamlIdp:
    return SamlIdp()


def make_sp(idp: SamlIdp, certs: list[str] | None = None) -> SamlConnector:
    settings = parse_idp_metadata(idp.metadata(certs))
    settings["sp_cert"] = SP_CERT
    conn = build("saml", settings, SP_KEY, None, {"entity_id": ENTITY, "acs_url": ACS})
    assert isinstance(conn, SamlConnector)
    return conn


@pytest.fixture
def sp(idp: SamlIdp) -> SamlConnector:
    return make_sp(idp)


def begin(sp: SamlConnector, idp: SamlIdp) -> tuple[AuthnRequest, dict[str, Any]]:
    start = sp.start(ACS, "relay-1")
    return idp.read_request(start.url), start.pending


def post(sp: SamlConnector, response: str, pending: dict[str, Any],
         seen: Callable[[str, int], bool] | None = None) -> UpstreamIdentity:
    return sp.callback({"SAMLResponse": response, "RelayState": "relay-1"}, pending, ACS,
                       seen or Seen())


def refused(fn: Callable[[], Any], code: str = "invalid_response") -> str:
    with pytest.raises(ConnectorError) as info:
        fn()
    assert info.value.code == code, str(info.value)
    return str(info.value)


# -- the SP side --------------------------------------------------------------------

def test_authn_request_is_signed_rsa_sha256_and_names_our_acs(sp: SamlConnector,
                                                              idp: SamlIdp) -> None:
    start = sp.start(ACS, "relay-1")
    req = idp.read_request(start.url)
    assert req.acs_url == ACS and req.issuer == ENTITY and req.relay_state == "relay-1"
    assert start.pending["request_id"] == req.id
    assert req.query["SigAlg"] == Const.RSA_SHA256
    raw = dict(part.split("=", 1) for part in urlsplit(start.url).query.split("&"))
    signed = "&".join(f"{k}={raw[k]}" for k in ("SAMLRequest", "RelayState", "SigAlg"))
    assert OneLogin_Saml2_Utils.validate_binary_sign(
        signed, base64.b64decode(req.query["Signature"]), SP_CERT, Const.RSA_SHA256)


def test_sp_metadata_has_entity_acs_and_certificate(sp: SamlConnector) -> None:
    root = etree.fromstring(sp.sp_metadata().encode())
    md = "urn:oasis:names:tc:SAML:2.0:metadata"
    assert root.get("entityID") == ENTITY
    acs = root.find(f".//{{{md}}}AssertionConsumerService")
    assert acs is not None and acs.get("Location") == ACS
    assert acs.get("Binding") == Const.BINDING_HTTP_POST
    assert root.find(f".//{{{md}}}SPSSODescriptor").get("AuthnRequestsSigned") == "true"
    assert "".join(SP_CERT.splitlines()[1:-1]) in sp.sp_metadata().replace("\n", "")


def test_metadata_without_certificate_refused(idp: SamlIdp) -> None:
    with pytest.raises(ConfigurationError):
        parse_idp_metadata(idp.metadata(certs=[]))


# -- happy path -------------------------------------------------------------------------

def test_signed_assertion_accepted(sp: SamlConnector, idp: SamlIdp) -> None:
    req, pending = begin(sp, idp)
    ident = post(sp, idp.signed_response(req, ENTITY, ALICE, {
        "employeeId": ["E-1"], "groups": ["Purchasing", "Staff"]}), pending)
    assert (ident.issuer, ident.subject) == (idp.entity_id, ALICE)
    assert ident.email == ALICE and ident.email_verified
    assert ident.claims["groups"] == ["Purchasing", "Staff"]


def test_certificate_rollover_accepts_any_listed_certificate(idp: SamlIdp) -> None:
    rolled = SamlIdp(entity_id=idp.entity_id, sso_url=idp.sso_url, keys=list(idp.keys))
    rolled.add_key()
    sp = make_sp(rolled)  # metadata lists the old and the new certificate
    for key_index in (0, 1):
        req, pending = begin(sp, rolled)
        assertion = rolled.assertion(in_response_to=req.id, recipient=ACS, audience=ENTITY,
                                     name_id=ALICE)
        response = rolled.response(rolled.sign(assertion, key_index), in_response_to=req.id,
                                   destination=ACS)
        assert post(sp, response, pending).subject == ALICE


def test_signature_by_an_unlisted_key_refused(idp: SamlIdp) -> None:
    other = SamlIdp(entity_id=idp.entity_id)
    sp = make_sp(idp)
    req, pending = begin(sp, idp)
    refused(lambda: post(sp, other.signed_response(req, ENTITY, ALICE), pending))


# -- negatives --------------------------------------------------------------------------

def test_unsigned_assertion_refused(sp: SamlConnector, idp: SamlIdp) -> None:
    req, pending = begin(sp, idp)
    assertion = idp.assertion(in_response_to=req.id, recipient=ACS, audience=ENTITY,
                              name_id=ALICE)
    refused(lambda: post(sp, idp.response(assertion, in_response_to=req.id, destination=ACS),
                         pending))


def test_signed_response_with_unsigned_assertion_refused(sp: SamlConnector,
                                                         idp: SamlIdp) -> None:
    req, pending = begin(sp, idp)
    assertion = idp.assertion(in_response_to=req.id, recipient=ACS, audience=ENTITY,
                              name_id=ALICE)
    raw = base64.b64decode(idp.response(assertion, in_response_to=req.id, destination=ACS))
    signed = idp.sign(raw.decode())
    refused(lambda: post(sp, base64.b64encode(signed.encode()).decode(), pending))


def test_rsa_sha1_refused(sp: SamlConnector, idp: SamlIdp) -> None:
    req, pending = begin(sp, idp)
    assertion = idp.assertion(in_response_to=req.id, recipient=ACS, audience=ENTITY,
                              name_id=ALICE)
    response = idp.response(idp.sign(assertion, sha1=True), in_response_to=req.id,
                            destination=ACS)
    refused(lambda: post(sp, response, pending))


@pytest.mark.parametrize(
    "defect",
    ["recipient", "destination", "audience", "expired", "in_response_to", "issuer"],
)
def test_assertion_defects_refused(sp: SamlConnector, idp: SamlIdp, defect: str) -> None:
    req, pending = begin(sp, idp)
    kw: dict[str, Any] = {"in_response_to": req.id, "recipient": ACS, "audience": ENTITY,
                          "name_id": ALICE}
    destination, irt = ACS, req.id
    if defect == "recipient":
        kw["recipient"] = "http://localhost/federation/other/acs"
    elif defect == "audience":
        kw["audience"] = "http://localhost/federation/other/metadata"
    elif defect == "expired":
        kw["lifetime"] = timedelta(minutes=-10)
    elif defect == "in_response_to":
        kw["in_response_to"] = irt = "_another_request"
    elif defect == "issuer":
        kw["issuer"] = "https://evil.example/saml"
    elif defect == "destination":
        destination = "http://localhost/federation/other/acs"
    response = idp.response(idp.sign(idp.assertion(**kw)), in_response_to=irt,
                            destination=destination)
    refused(lambda: post(sp, response, pending))


def test_unsolicited_response_refused(sp: SamlConnector, idp: SamlIdp) -> None:
    _, pending = begin(sp, idp)
    assertion = idp.sign(idp.assertion(in_response_to="", recipient=ACS, audience=ENTITY,
                                       name_id=ALICE))
    xml = base64.b64decode(idp.response(assertion, in_response_to="", destination=ACS))
    xml = xml.replace(b' InResponseTo=""', b"")
    refused(lambda: post(sp, base64.b64encode(xml).decode(), pending))


def test_replay_refused(sp: SamlConnector, idp: SamlIdp) -> None:
    req, pending = begin(sp, idp)
    response = idp.signed_response(req, ENTITY, ALICE)
    seen = Seen()
    assert post(sp, response, pending, seen).subject == ALICE
    refused(lambda: post(sp, response, pending, seen), code="replay")


def test_comment_injection_in_name_id_does_not_truncate(sp: SamlConnector,
                                                        idp: SamlIdp) -> None:
    req, pending = begin(sp, idp)
    assertion = idp.assertion(in_response_to=req.id, recipient=ACS, audience=ENTITY,
                              name_id="alice@acme.example<!---->.evil.example",
                              raw_name_id=True, name_id_format=Const.NAMEID_PERSISTENT)
    response = idp.response(idp.sign(assertion), in_response_to=req.id, destination=ACS)
    ident = post(sp, response, pending)
    assert ident.subject == "alice@acme.example.evil.example"
    assert ident.subject != ALICE


def test_signature_wrapping_refused(sp: SamlConnector, idp: SamlIdp) -> None:
    """XSW: keep the genuinely signed assertion (for mallory) but add an unsigned one
    for alice where the SP would read it, in two classic placements."""
    for placement in ("sibling_before", "inside_extensions"):
        req, pending = begin(sp, idp)
        good = idp.sign(idp.assertion(in_response_to=req.id, recipient=ACS, audience=ENTITY,
                                      name_id="mallory@acme.example"))
        evil = idp.assertion(in_response_to=req.id, recipient=ACS, audience=ENTITY,
                             name_id=ALICE)
        raw = base64.b64decode(idp.response(good, in_response_to=req.id, destination=ACS))
        root = etree.fromstring(raw)
        signed = root.find("saml:Assertion", NS)
        evil_el = etree.fromstring(evil.encode())
        evil_el.set("ID", signed.get("ID"))  # same ID so the reference "matches" it
        if placement == "sibling_before":
            signed.addprevious(evil_el)
        else:
            ext = etree.SubElement(root, f"{{{NS['samlp']}}}Extensions")
            root.remove(signed)
            ext.append(signed)
            root.insert(2, evil_el)
        response = base64.b64encode(etree.tostring(root)).decode()
        with pytest.raises(ConnectorError):
            post(sp, response, pending)


def test_doctype_and_entities_refused(sp: SamlConnector, idp: SamlIdp) -> None:
    req, pending = begin(sp, idp)
    assertion = idp.sign(idp.assertion(in_response_to=req.id, recipient=ACS, audience=ENTITY,
                                       name_id=ALICE))
    doctype = '<!DOCTYPE r [<!ENTITY x "alice">]>'
    response = idp.response(assertion, in_response_to=req.id, destination=ACS,
                            doctype=doctype)
    refused(lambda: post(sp, response, pending))


def test_transient_name_id_needs_a_subject_attribute(sp: SamlConnector, idp: SamlIdp) -> None:
    req, pending = begin(sp, idp)
    assertion = idp.assertion(in_response_to=req.id, recipient=ACS, audience=ENTITY,
                              name_id="_transient123", name_id_format=Const.NAMEID_TRANSIENT)
    response = idp.response(idp.sign(assertion), in_response_to=req.id, destination=ACS)
    refused(lambda: post(sp, response, pending), code="transient_nameid")


def test_garbage_is_a_connector_error_not_a_crash(sp: SamlConnector, idp: SamlIdp) -> None:
    _, pending = begin(sp, idp)
    for junk in ("not base64 at all!!", base64.b64encode(b"<x>").decode(), ""):
        with pytest.raises(ConnectorError):
            post(sp, junk, pending)


# -- a new upstream sign-in (ForceAuthn) ------------------------------------------------

def test_forced_start_sets_force_authn_and_checks_the_authn_instant(
    sp: SamlConnector, idp: SamlIdp
) -> None:
    from datetime import UTC, datetime

    start = sp.start(ACS, "relay-1", force=True)
    req = idp.read_request(start.url)
    assert 'ForceAuthn="true"' in zlib.decompress(
        base64.b64decode(req.query["SAMLRequest"]), -15).decode()
    assertion = idp.assertion(in_response_to=req.id, recipient=req.acs_url, audience=ENTITY,
                              name_id=ALICE)
    ident = post(sp, idp.response(idp.sign(assertion), in_response_to=req.id,
                                  destination=req.acs_url), start.pending)
    assert ident.subject == ALICE
    start = sp.start(ACS, "relay-1", force=True)
    req = idp.read_request(start.url)
    old = idp.assertion(in_response_to=req.id, recipient=req.acs_url, audience=ENTITY,
                        name_id=ALICE, authn_instant=datetime.now(UTC) - timedelta(hours=1))
    refused(lambda: post(sp, idp.response(idp.sign(old), in_response_to=req.id,
                                          destination=req.acs_url), start.pending),
            "stale_authentication")
