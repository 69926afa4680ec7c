"""The IdP's own names and metadata (saml-metadata 2.4.3 IDPSSODescriptor).

The entity ID is ``<issuer>/saml/metadata`` (the metadata URL itself, so a merchant
can paste one address). Every certificate of the active and the published RS256 keys
is listed, the active one first: after ``idp keys rotate --alg RS256`` SPs that
refresh metadata trust both, and responses are signed with the new key.
"""

from __future__ import annotations

import base64
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from idp.crypto.keyring import X509Signer
from idp.saml.constants import (
    BINDING_POST,
    BINDING_REDIRECT,
    NAMEID_FORMATS,
    NS_DS,
    NS_MD,
)
from idp.services import keyring, settings


def _base() -> str:
    return settings().issuer.rstrip("/")


def entity_id() -> str:
    """The IdP entity ID: ``<issuer>/saml/metadata``."""
    return _base() + "/saml/metadata"


def sso_url() -> str:
    """The single sign-on service URL (both bindings)."""
    return _base() + "/saml/sso"


def slo_url() -> str:
    """The single logout service URL (both bindings)."""
    return _base() + "/saml/slo"


def _common_name() -> str:
    return urllib.parse.urlsplit(settings().issuer).hostname or "unitgate"


def signer() -> X509Signer:
    """The active RS256 key and its certificate, as XML signatures need them."""
    return keyring().x509_signer(_common_name())


def certificates() -> list[str]:
    """PEM certificates of the active and the published RS256 keys, active first."""
    return [k.certificate_pem for k in keyring().certified(_common_name()) if k.certificate_pem]


def certificate_base64(pem: str) -> str:
    """The base64 DER of a PEM certificate, as ``ds:X509Certificate`` carries it."""
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return base64.b64encode(der).decode()


def metadata_xml() -> bytes:
    """The IdP metadata document."""
    md = f"{{{NS_MD}}}"
    ds = f"{{{NS_DS}}}"
    root = etree.Element(f"{md}EntityDescriptor", nsmap={"md": NS_MD, "ds": NS_DS})
    root.set("entityID", entity_id())
    idp = etree.SubElement(root, f"{md}IDPSSODescriptor")
    idp.set("protocolSupportEnumeration", "urn:oasis:names:tc:SAML:2.0:protocol")
    idp.set("WantAuthnRequestsSigned", "false")
    for pem in certificates():
        kd = etree.SubElement(idp, f"{md}KeyDescriptor", use="signing")
        data = etree.SubElement(etree.SubElement(kd, f"{ds}KeyInfo"), f"{ds}X509Data")
        etree.SubElement(data, f"{ds}X509Certificate").text = certificate_base64(pem)
    for binding in (BINDING_REDIRECT, BINDING_POST):
        etree.SubElement(idp, f"{md}SingleLogoutService", Binding=binding, Location=slo_url())
    for uri in NAMEID_FORMATS.values():
        etree.SubElement(idp, f"{md}NameIDFormat").text = uri
    for binding in (BINDING_REDIRECT, BINDING_POST):
        etree.SubElement(idp, f"{md}SingleSignOnService", Binding=binding, Location=sso_url())
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
