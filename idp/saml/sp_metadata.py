"""Reading a service provider's SAML metadata (saml-metadata 2.4.4 SPSSODescriptor)
into what the registry stores.

Only what the IdP needs is kept: the entity ID, the HTTP-POST assertion consumer
services (the only ACS URLs an AuthnRequest may name), single-logout endpoints,
signing and encryption certificates (with the preferred block cipher), whether the SP
signs its AuthnRequests and wants signed assertions, and the attributes it requests.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from lxml import etree

from idp.saml import xmlsafe
from idp.saml.constants import (
    BINDING_POST,
    BINDING_REDIRECT,
    BINDING_SOAP,
    ENC_AES256_GCM,
    ENCRYPTION_PREFERENCE,
    NS_DS,
    NS_MD,
)
from idp.saml.xmlsafe import MalformedMessage
from idp.services import settings
from idp.webhooks import targets

MAX_METADATA_BYTES = 1024 * 1024
FETCH_TIMEOUT_SECONDS = 10
_MD = f"{{{NS_MD}}}"
_DS = f"{{{NS_DS}}}"
_X509_CERTIFICATES = f"{_DS}KeyInfo/{_DS}X509Data/{_DS}X509Certificate"


class MetadataError(ValueError):
    """The metadata cannot be used; the message says why."""


@dataclass
class SpMetadata:
    """The parts of an SP's metadata the registry keeps."""

    entity_id: str
    name: str | None
    acs_endpoints: list[dict[str, Any]]
    slo_endpoints: list[dict[str, Any]]
    signing_certificates: list[str]
    encryption_certificates: list[str]
    encryption_method: str | None
    authn_requests_signed: bool
    want_assertions_signed: bool
    nameid_formats: list[str] = field(default_factory=list)
    requested_attributes: list[str] = field(default_factory=list)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_endpoint_url(url: str, what: str) -> str:
    """``url`` if it is an absolute https URL without fragment (http only on
    loopback, for development); raises :class:`MetadataError`."""
    parts = urllib.parse.urlsplit(url)
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and is_loopback(parts.hostname or "")
    )
    if not parts.hostname or not secure or parts.fragment:
        raise MetadataError(f"{what} must be an https URL without fragment (got {url!r})")
    return url


def fetch(url: str) -> bytes:
    """GET metadata from ``url`` (https, or http on loopback), no redirects, at
    most :data:`MAX_METADATA_BYTES`, within :data:`FETCH_TIMEOUT_SECONDS`, under the
    webhooks' SSRF rules (:mod:`idp.webhooks.targets`: public addresses only, connected
    to the checked address; ``IDP_BACKCHANNEL_ALLOW_PRIVATE`` lifts the address check):
    an ``idp apply`` file names the URL, and its plan fetches it."""
    check_endpoint_url(url, "the metadata URL")
    answer = targets.get(url, {"accept": "application/samlmetadata+xml"},
                         FETCH_TIMEOUT_SECONDS, settings().backchannel_allow_private,
                         MAX_METADATA_BYTES)
    if answer.error is not None or answer.body is None:
        if answer.status is not None and answer.status < 300:  # too large
            raise MetadataError("the metadata is larger than 1 MiB")
        raise MetadataError(f"cannot fetch metadata from {url}: {answer.error}")
    return answer.body.encode("utf-8")  # the registry keeps metadata as UTF-8 text


def certificate_pem(text: str) -> str:
    """A ``ds:X509Certificate`` value (base64 DER) as PEM; must hold an RSA key."""
    try:
        der = base64.b64decode("".join(text.split()), validate=True)
        cert = x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as exc:
        raise MetadataError("a certificate in the metadata cannot be read") from exc
    if not isinstance(cert.public_key(), RSAPublicKey):
        raise MetadataError("only RSA certificates are supported")
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _descriptor(root: etree._Element) -> etree._Element:
    if root.tag == f"{_MD}EntitiesDescriptor":
        entities = root.findall(f"{_MD}EntityDescriptor")
        with_sp = [e for e in entities if e.find(f"{_MD}SPSSODescriptor") is not None]
        if len(with_sp) != 1:
            raise MetadataError("the metadata must describe exactly one service provider")
        root = with_sp[0]
    if root.tag != f"{_MD}EntityDescriptor":
        raise MetadataError("not SAML 2.0 metadata (no md:EntityDescriptor)")
    return root


def parse(data: bytes) -> SpMetadata:
    """The registry's view of SP metadata; raises :class:`MetadataError`."""
    try:
        return _read(_descriptor(xmlsafe.parse(data, MAX_METADATA_BYTES)))
    except MalformedMessage as exc:
        raise MetadataError(str(exc)) from exc


def _read(root: etree._Element) -> SpMetadata:
    entity_id = (root.get("entityID") or "").strip()
    if not entity_id or len(entity_id) > 500:
        raise MetadataError("the metadata has no usable entityID")
    sps = root.findall(f"{_MD}SPSSODescriptor")
    if len(sps) != 1:
        raise MetadataError("the metadata must have exactly one md:SPSSODescriptor")
    sp = sps[0]
    if "urn:oasis:names:tc:SAML:2.0:protocol" not in (sp.get("protocolSupportEnumeration") or ""):
        raise MetadataError("the SP does not support the SAML 2.0 protocol")

    acs = []
    for el in sp.findall(f"{_MD}AssertionConsumerService"):
        if el.get("Binding") != BINDING_POST:
            continue
        url = check_endpoint_url((el.get("Location") or "").strip(), "an ACS URL")
        index = el.get("index")
        acs.append(
            {
                "url": url,
                "binding": BINDING_POST,
                "index": int(index) if index and index.isdigit() else None,
                "default": xmlsafe.parse_bool(el.get("isDefault")),
            }
        )
    if not acs:
        raise MetadataError("the SP has no AssertionConsumerService with the HTTP-POST binding")

    slo = []
    for el in sp.findall(f"{_MD}SingleLogoutService"):
        binding = el.get("Binding")
        if binding == BINDING_SOAP:
            # the back channel (idp.saml.soap_logout): the webhooks' SSRF rules apply
            # to it at each send, when it is resolved; here only its form
            location = check_endpoint_url((el.get("Location") or "").strip(),
                                          "a SOAP SLO URL")
            slo.append({"url": location, "binding": binding, "response_url": location})
            continue
        if binding not in (BINDING_REDIRECT, BINDING_POST):
            continue
        location = check_endpoint_url((el.get("Location") or "").strip(), "an SLO URL")
        response_location = (el.get("ResponseLocation") or "").strip() or location
        check_endpoint_url(response_location, "an SLO response URL")
        slo.append({"url": location, "binding": binding, "response_url": response_location})

    signing: list[str] = []
    encryption: list[str] = []
    methods: list[str] = []
    for kd in sp.findall(f"{_MD}KeyDescriptor"):
        use = kd.get("use")
        certs = [certificate_pem(xmlsafe.text_of(c) or "") for c in kd.iterfind(_X509_CERTIFICATES)]
        if use in (None, "signing"):
            signing += [c for c in certs if c not in signing]
        if use in (None, "encryption"):
            encryption += [c for c in certs if c not in encryption]
            methods += [m.get("Algorithm") or "" for m in kd.findall(f"{_MD}EncryptionMethod")]

    encryption_method = None
    if encryption:
        listed = [m for m in methods if m in ENCRYPTION_PREFERENCE]
        if methods and not listed:
            raise MetadataError("the SP accepts none of the supported encryption algorithms")
        encryption_method = (
            min(listed, key=ENCRYPTION_PREFERENCE.index) if listed else ENC_AES256_GCM
        )

    name_el = root.find(f"{_MD}Organization/{_MD}OrganizationDisplayName")
    requested = [
        ra.get("Name") or ""
        for ra in sp.iterfind(f"{_MD}AttributeConsumingService/{_MD}RequestedAttribute")
    ] + [
        ra.get("FriendlyName") or ""
        for ra in sp.iterfind(f"{_MD}AttributeConsumingService/{_MD}RequestedAttribute")
    ]
    return SpMetadata(
        entity_id=entity_id,
        name=(xmlsafe.text_of(name_el) or None) if name_el is not None else None,
        acs_endpoints=acs,
        slo_endpoints=slo,
        signing_certificates=signing,
        encryption_certificates=encryption,
        encryption_method=encryption_method,
        authn_requests_signed=xmlsafe.parse_bool(sp.get("AuthnRequestsSigned")),
        want_assertions_signed=xmlsafe.parse_bool(sp.get("WantAssertionsSigned")),
        nameid_formats=[xmlsafe.text_of(n) or "" for n in sp.findall(f"{_MD}NameIDFormat")],
        requested_attributes=[r for r in requested if r],
    )
