"""A test SAML 2.0 identity provider that signs with xmlsec.

It publishes metadata, reads the SP's AuthnRequest from the redirect URL, and builds
Responses whose assertion is signed by xmlsec (through python3-saml's signing helper)
with its own key, exactly as a real IdP's would be. Every knob a negative test
needs is a keyword: wrong Recipient/Destination/Audience, expiry, InResponseTo,
unsigned, rsa-sha1, another signing key, a comment inside the NameID, and a
signature-wrapping variant.
"""

from __future__ import annotations

import base64
import secrets
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants as Const
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from connectors.saml import generate_sp_keypair

NS = {"saml": "urn:oasis:names:tc:SAML:2.0:assertion",
      "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
      "ds": "http://www.w3.org/2000/09/xmldsig#"}


def _instant(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cert_body(pem: str) -> str:
    return "".join(line for line in pem.strip().splitlines() if "CERTIFICATE" not in line)


@dataclass
class AuthnRequest:
    id: str
    acs_url: str
    issuer: str
    relay_state: str
    query: dict[str, str]


@dataclass
class SamlIdp:
    entity_id: str = "https://idp.acme.example/saml"
    sso_url: str = "https://idp.acme.example/saml/sso"
    keys: list[tuple[str, str]] = field(default_factory=list)  # (key pem, cert pem)

    def __post_init__(self) -> None:
        if not self.keys:
            self.keys.append(generate_sp_keypair("idp.acme.example"))

    def add_key(self) -> tuple[str, str]:
        """A new signing key (certificate rollover); returns (key pem, cert pem)."""
        pair = generate_sp_keypair("idp.acme.example next")
        self.keys.append(pair)
        return pair

    def metadata(self, certs: list[str] | None = None) -> str:
        """IdP metadata listing ``certs`` (default: every key's certificate)."""
        certs = certs if certs is not None else [c for _, c in self.keys]
        descriptors = "".join(
            '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
            f"{_cert_body(c)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
            "</md:KeyDescriptor>"
            for c in certs
        )
        return (
            '<?xml version="1.0"?>'
            '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{self.entity_id}">'
            '<md:IDPSSODescriptor WantAuthnRequestsSigned="true" '
            'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            f"{descriptors}"
            "<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
            "</md:NameIDFormat>"
            '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
            f'Location="{self.sso_url}"/>'
            "</md:IDPSSODescriptor></md:EntityDescriptor>"
        )

    def read_request(self, url: str) -> AuthnRequest:
        """The AuthnRequest carried by an HTTP-Redirect binding URL."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        xml = zlib.decompress(base64.b64decode(query["SAMLRequest"]), -15)
        root = etree.fromstring(xml)
        return AuthnRequest(
            id=root.get("ID", ""),
            acs_url=root.get("AssertionConsumerServiceURL", ""),
            issuer=root.findtext("saml:Issuer", namespaces=NS) or "",
            relay_state=query.get("RelayState", ""),
            query=query,
        )

    def assertion(
        self,
        *,
        in_response_to: str,
        recipient: str,
        audience: str,
        name_id: str,
        attributes: dict[str, list[str]] | None = None,
        name_id_format: str = Const.NAMEID_EMAIL_ADDRESS,
        lifetime: timedelta = timedelta(minutes=5),
        assertion_id: str | None = None,
        issuer: str | None = None,
        raw_name_id: bool = False,
        authn_instant: datetime | None = None,
    ) -> str:
        now = datetime.now(UTC)
        noa = _instant(now + lifetime)
        attrs = "".join(
            f'<saml:Attribute Name="{escape(name)}">'
            + "".join(f"<saml:AttributeValue>{escape(v)}</saml:AttributeValue>" for v in values)
            + "</saml:Attribute>"
            for name, values in (attributes or {}).items()
        )
        name_text = name_id if raw_name_id else escape(name_id)
        assertion_id = assertion_id or "_a" + secrets.token_hex(16)
        return (
            f'<saml:Assertion xmlns:saml="{NS["saml"]}" ID="{assertion_id}" '
            f'Version="2.0" IssueInstant="{_instant(now)}">'
            f"<saml:Issuer>{issuer or self.entity_id}</saml:Issuer>"
            f'<saml:Subject><saml:NameID Format="{name_id_format}">{name_text}</saml:NameID>'
            '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
            f'<saml:SubjectConfirmationData InResponseTo="{in_response_to}" '
            f'NotOnOrAfter="{noa}" Recipient="{recipient}"/>'
            "</saml:SubjectConfirmation></saml:Subject>"
            f'<saml:Conditions NotBefore="{_instant(now - timedelta(minutes=1))}" '
            f'NotOnOrAfter="{noa}"><saml:AudienceRestriction>'
            f"<saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction>"
            "</saml:Conditions>"
            f'<saml:AuthnStatement AuthnInstant="{_instant(authn_instant or now)}" '
            'SessionIndex="_s1">'
            "<saml:AuthnContext><saml:AuthnContextClassRef>"
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
            "</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"
            + (f"<saml:AttributeStatement>{attrs}</saml:AttributeStatement>" if attrs else "")
            + "</saml:Assertion>"
        )

    def sign(self, xml: str, key_index: int = -1, sha1: bool = False) -> str:
        """Sign the top element of ``xml`` with xmlsec (enveloped, exc-c14n)."""
        key, cert = self.keys[key_index]
        signed = OneLogin_Saml2_Utils.add_sign(
            xml, key, cert,
            sign_algorithm=Const.RSA_SHA1 if sha1 else Const.RSA_SHA256,
            digest_algorithm=Const.SHA1 if sha1 else Const.SHA256,
        )
        return signed.decode() if isinstance(signed, bytes) else str(signed)

    def response(self, assertion: str, *, in_response_to: str, destination: str,
                 doctype: str = "") -> str:
        """A Response around ``assertion``, base64-encoded for the HTTP-POST binding."""
        xml = (
            f"{doctype}"
            f'<samlp:Response xmlns:samlp="{NS["samlp"]}" xmlns:saml="{NS["saml"]}" '
            f'ID="_r{secrets.token_hex(16)}" Version="2.0" '
            f'IssueInstant="{_instant(datetime.now(UTC))}" Destination="{destination}" '
            f'InResponseTo="{in_response_to}">'
            f"<saml:Issuer>{self.entity_id}</saml:Issuer>"
            '<samlp:Status><samlp:StatusCode '
            'Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
            f"{assertion}</samlp:Response>"
        )
        return base64.b64encode(xml.encode()).decode()

    def signed_response(self, request: AuthnRequest, audience: str, name_id: str,
                        attributes: dict[str, list[str]] | None = None, **kw: object) -> str:
        """The usual good answer to ``request``: a Response with a signed assertion."""
        assertion = self.assertion(in_response_to=request.id, recipient=request.acs_url,
                                   audience=audience, name_id=name_id, attributes=attributes)
        return self.response(self.sign(assertion), in_response_to=request.id,
                             destination=request.acs_url)
