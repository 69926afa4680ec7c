"""Building the ``samlp:Response`` of web-browser SSO (saml-profiles 4.1.4.2).

The assertion is built with a bearer ``SubjectConfirmationData`` bound to the ACS URL
(``Recipient``), the request (``InResponseTo``) and a short ``NotOnOrAfter``; its
``Conditions`` restrict the audience to the SP. Then, per SP: the assertion is signed,
encrypted for the SP's encryption certificate (RSA-OAEP key transport, AES-GCM or
AES-CBC content), placed in the response, and the response is signed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import xmlsec
from cryptography import x509
from lxml import etree

from idp.crypto.keyring import X509Signer
from idp.saml import xmlsafe
from idp.saml.attributes import SamlAttribute
from idp.saml.constants import (
    ATTRNAME_URI,
    CM_BEARER,
    ENC_AES128_CBC,
    ENC_AES128_GCM,
    ENC_AES256_CBC,
    ENC_AES256_GCM,
    NS_SAML,
    NS_SAMLP,
    NS_XS,
    NS_XSI,
    STATUS_SUCCESS,
)
from idp.saml.signatures import sign_xml

ASSERTION_LIFETIME = timedelta(minutes=5)
CLOCK_SKEW = timedelta(minutes=1)

_SAML = f"{{{NS_SAML}}}"
_SAMLP = f"{{{NS_SAMLP}}}"
_CIPHERS = {
    ENC_AES256_GCM: (xmlsec.constants.TransformAes256Gcm, 256),
    ENC_AES128_GCM: (xmlsec.constants.TransformAes128Gcm, 128),
    ENC_AES256_CBC: (xmlsec.constants.TransformAes256Cbc, 256),
    ENC_AES128_CBC: (xmlsec.constants.TransformAes128Cbc, 128),
}


def new_id() -> str:
    """A message or assertion ID: an NCName with 160 random bits."""
    return "_" + secrets.token_hex(20)


@dataclass(frozen=True)
class Subject:
    """A NameID with its format and qualifiers."""

    name_id: str
    format: str
    name_qualifier: str | None = None
    sp_name_qualifier: str | None = None


def name_id_element(parent: etree._Element, subject: Subject) -> etree._Element:
    """A ``saml:NameID`` child of ``parent`` (saml-core 2.2.3)."""
    el = etree.SubElement(parent, f"{_SAML}NameID", Format=subject.format)
    if subject.name_qualifier:
        el.set("NameQualifier", subject.name_qualifier)
    if subject.sp_name_qualifier:
        el.set("SPNameQualifier", subject.sp_name_qualifier)
    el.text = subject.name_id
    return el


def build_assertion(
    *,
    issuer: str,
    audience: str,
    recipient: str,
    in_response_to: str | None,
    subject: Subject,
    authn_instant: datetime,
    session_index: str,
    authn_context: str,
    attributes: list[SamlAttribute],
    now: datetime,
) -> etree._Element:
    """An unsigned assertion, the root of its own document (saml-core 2.3.3)."""
    until = xmlsafe.format_instant(now + ASSERTION_LIFETIME)
    a = etree.Element(
        f"{_SAML}Assertion",
        nsmap={"saml": NS_SAML, "xs": NS_XS, "xsi": NS_XSI},
        ID=new_id(),
        Version="2.0",
        IssueInstant=xmlsafe.format_instant(now),
    )
    etree.SubElement(a, f"{_SAML}Issuer").text = issuer
    subj = etree.SubElement(a, f"{_SAML}Subject")
    name_id_element(subj, subject)
    conf = etree.SubElement(subj, f"{_SAML}SubjectConfirmation", Method=CM_BEARER)
    data = etree.SubElement(
        conf, f"{_SAML}SubjectConfirmationData", NotOnOrAfter=until, Recipient=recipient
    )
    if in_response_to:
        data.set("InResponseTo", in_response_to)
    cond = etree.SubElement(
        a,
        f"{_SAML}Conditions",
        NotBefore=xmlsafe.format_instant(now - CLOCK_SKEW),
        NotOnOrAfter=until,
    )
    restriction = etree.SubElement(cond, f"{_SAML}AudienceRestriction")
    etree.SubElement(restriction, f"{_SAML}Audience").text = audience
    statement = etree.SubElement(
        a,
        f"{_SAML}AuthnStatement",
        AuthnInstant=xmlsafe.format_instant(authn_instant),
        SessionIndex=session_index,
    )
    ctx = etree.SubElement(statement, f"{_SAML}AuthnContext")
    etree.SubElement(ctx, f"{_SAML}AuthnContextClassRef").text = authn_context
    if attributes:
        attrs = etree.SubElement(a, f"{_SAML}AttributeStatement")
        for attr in attributes:
            el = etree.SubElement(
                attrs,
                f"{_SAML}Attribute",
                Name=attr.name,
                NameFormat=ATTRNAME_URI,
                FriendlyName=attr.friendly_name,
            )
            for value in attr.values:
                v = etree.SubElement(el, f"{_SAML}AttributeValue")
                v.set(f"{{{NS_XSI}}}type", "xs:string")
                v.text = value
    return a


def build_response(
    *,
    issuer: str,
    destination: str,
    in_response_to: str | None,
    now: datetime,
    status: str = STATUS_SUCCESS,
    sub_status: str | None = None,
    message: str | None = None,
) -> etree._Element:
    """A ``samlp:Response`` without assertion (saml-core 3.2.2)."""
    r = etree.Element(
        f"{_SAMLP}Response",
        nsmap={"samlp": NS_SAMLP, "saml": NS_SAML},
        ID=new_id(),
        Version="2.0",
        IssueInstant=xmlsafe.format_instant(now),
        Destination=destination,
    )
    if in_response_to:
        r.set("InResponseTo", in_response_to)
    etree.SubElement(r, f"{_SAML}Issuer").text = issuer
    st = etree.SubElement(r, f"{_SAMLP}Status")
    code = etree.SubElement(st, f"{_SAMLP}StatusCode", Value=status)
    if sub_status:
        etree.SubElement(code, f"{_SAMLP}StatusCode", Value=sub_status)
    if message:
        etree.SubElement(st, f"{_SAMLP}StatusMessage").text = message
    return r


def encrypt_assertion(
    assertion: etree._Element, certificate_pem: str, method: str
) -> etree._Element:
    """``saml:EncryptedAssertion`` holding ``assertion`` encrypted with a fresh
    content key (``method``), itself encrypted with RSA-OAEP for the certificate's
    key (xmlenc-core 3.4, saml-core 6.2)."""
    cipher, bits = _CIPHERS.get(method, _CIPHERS[ENC_AES256_GCM])
    x509.load_pem_x509_certificate(certificate_pem.encode())
    wrapper = etree.Element(f"{_SAML}EncryptedAssertion", nsmap={"saml": NS_SAML})
    wrapper.append(assertion)
    template = xmlsec.template.encrypted_data_create(
        wrapper, cipher, type=xmlsec.constants.TypeEncElement, ns="xenc"
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="ds")
    enc_key = xmlsec.template.add_encrypted_key(key_info, xmlsec.constants.TransformRsaOaep)
    xmlsec.template.encrypted_data_ensure_cipher_value(enc_key)
    manager = xmlsec.KeysManager()
    pem_format = xmlsec.constants.KeyDataFormatCertPem
    manager.add_key(xmlsec.Key.from_memory(certificate_pem.encode(), pem_format, None))
    ctx = xmlsec.EncryptionContext(manager)
    ctx.key = xmlsec.Key.generate(
        xmlsec.constants.KeyDataAes, bits, xmlsec.constants.KeyDataTypeSession
    )
    ctx.encrypt_xml(template, assertion)
    return wrapper


def protect(
    response: etree._Element,
    assertion: etree._Element,
    signer: X509Signer,
    *,
    sign_assertion: bool,
    sign_response: bool,
    encryption_certificate: str | None,
    encryption_method: str | None,
) -> bytes:
    """The serialised response carrying ``assertion``: signed and/or encrypted as
    the SP is configured (assertion signature first, then encryption, then the
    response signature over the result)."""
    if sign_assertion:
        assertion = sign_xml(assertion, signer)
    if encryption_certificate:
        content: etree._Element = encrypt_assertion(
            assertion, encryption_certificate, encryption_method or ENC_AES256_GCM
        )
    else:
        content = assertion
    response.append(content)
    if sign_response:
        response = sign_xml(response, signer)
    return etree.tostring(response, xml_declaration=True, encoding="UTF-8")


def serialise(response: etree._Element, signer: X509Signer | None = None) -> bytes:
    """A response without assertion (an error status), signed when ``signer`` is
    given."""
    if signer is not None:
        response = sign_xml(response, signer)
    return etree.tostring(response, xml_declaration=True, encoding="UTF-8")
