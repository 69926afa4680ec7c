"""XML and query-string signatures of SAML messages (saml-bindings 3.4.4.1 and
3.5.4; saml-core 5).

Inbound: only a signature that is a direct child of the message's root element and
references that root by its ID is ever accepted, so what was verified is exactly what
is then read (no signature wrapping). SHA-1 is refused, and so are transforms other
than enveloped-signature and canonicalisation. Outbound: RSA-SHA256 with the active
RS256 key of the key ring, through python3-saml's xmlsec helpers.
"""

from __future__ import annotations

import base64
import binascii

import xmlsec
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from idp.crypto.keyring import X509Signer
from idp.saml.constants import (
    C14N_ALGORITHMS,
    DIGEST_ALGORITHMS,
    NS_DS,
    RSA_SHA1,
    RSA_SHA256,
    SIGNATURE_ALGORITHMS,
    TRANSFORM_ENVELOPED,
)
from idp.saml.xmlsafe import MalformedMessage

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_DS = f"{{{NS_DS}}}"


def _check_algorithm(uri: str | None) -> None:
    if uri == RSA_SHA1:
        raise MalformedMessage("signatures with rsa-sha1 are refused; use rsa-sha256")
    if uri not in SIGNATURE_ALGORITHMS:
        raise MalformedMessage("unsupported signature algorithm")


def _public_keys(certificates: list[str]) -> list[RSAPublicKey]:
    keys = []
    for pem in certificates:
        key = x509.load_pem_x509_certificate(pem.encode()).public_key()
        if isinstance(key, RSAPublicKey):
            keys.append(key)
    return keys


def root_signature(root: etree._Element) -> etree._Element | None:
    """The enveloped ``ds:Signature`` of the root element, checked for shape: it must
    be the only signature in the document, sign the root by its ID with one
    reference, and use only allowed algorithms and transforms. None if unsigned."""
    signatures = root.findall(f".//{_DS}Signature")
    if not signatures:
        return None
    if len(signatures) != 1 or signatures[0].getparent() is not root:
        raise MalformedMessage("a signature must sign the whole message")
    sig = signatures[0]
    root_id = root.get("ID")
    if not root_id:
        raise MalformedMessage("the signed message has no ID")
    same_id = [el for el in root.iter() if isinstance(el.tag, str) and el.get("ID") == root_id]
    if len(same_id) != 1:
        raise MalformedMessage("duplicate ID in the signed message")
    signed_info = sig.find(f"{_DS}SignedInfo")
    if signed_info is None:
        raise MalformedMessage("malformed signature")
    c14n = signed_info.find(f"{_DS}CanonicalizationMethod")
    if c14n is None or c14n.get("Algorithm") not in C14N_ALGORITHMS:
        raise MalformedMessage("unsupported canonicalisation")
    method = signed_info.find(f"{_DS}SignatureMethod")
    _check_algorithm(method.get("Algorithm") if method is not None else None)
    references = signed_info.findall(f"{_DS}Reference")
    if len(references) != 1 or references[0].get("URI") != f"#{root_id}":
        raise MalformedMessage("the signature does not reference the message")
    ref = references[0]
    for transform in ref.findall(f"{_DS}Transforms/{_DS}Transform"):
        algorithm = transform.get("Algorithm")
        if algorithm != TRANSFORM_ENVELOPED and algorithm not in C14N_ALGORITHMS:
            raise MalformedMessage("unsupported signature transform")
    digest = ref.find(f"{_DS}DigestMethod")
    if digest is None or digest.get("Algorithm") not in DIGEST_ALGORITHMS:
        raise MalformedMessage("unsupported or SHA-1 digest algorithm")
    return sig


def verify_enveloped(root: etree._Element, certificates: list[str]) -> bool:
    """True when ``root`` carries a valid enveloped signature by one of
    ``certificates``; False when it carries none. Raises :class:`MalformedMessage`
    for an invalid, misplaced or weak signature."""
    sig = root_signature(root)
    if sig is None:
        return False
    if not certificates:
        raise MalformedMessage("the message is signed but no signing certificate is registered")
    try:
        xmlsec.tree.add_ids(root, ["ID"])
    except xmlsec.Error as exc:
        raise MalformedMessage("the signed message has invalid IDs") from exc
    for pem in certificates:
        ctx = xmlsec.SignatureContext()
        ctx.key = xmlsec.Key.from_memory(pem.encode(), xmlsec.constants.KeyDataFormatCertPem, None)
        try:
            ctx.verify(sig)
        except xmlsec.Error:
            continue
        return True
    raise MalformedMessage("the signature of the message is invalid")


def verify_query(
    signed_octets: bytes, sig_alg: str | None, signature_b64: str, certificates: list[str]
) -> None:
    """Verify an HTTP-Redirect binding signature (saml-bindings 3.4.4.1) over the
    octets as received; raises :class:`MalformedMessage` unless one of
    ``certificates`` verifies it."""
    _check_algorithm(sig_alg)
    assert sig_alg is not None
    try:
        signature = base64.b64decode("".join(signature_b64.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedMessage("the signature is not valid base64") from exc
    algorithm = _HASHES[SIGNATURE_ALGORITHMS[sig_alg]]()
    for key in _public_keys(certificates):
        try:
            key.verify(signature, signed_octets, padding.PKCS1v15(), algorithm)
        except InvalidSignature:
            continue
        return
    raise MalformedMessage("the signature of the message is invalid")


def sign_xml(element: etree._Element, signer: X509Signer) -> etree._Element:
    """``element`` (the root of its own document: a Response, Assertion,
    LogoutRequest or LogoutResponse with its Issuer) signed enveloped with
    RSA-SHA256 and SHA-256 digests, the certificate in ``KeyInfo``. Returns the
    signed element re-read from its serialisation."""
    signed = OneLogin_Saml2_Utils.add_sign(
        etree.tostring(element),
        signer.private_key_pem,
        signer.certificate_pem,
        sign_algorithm=OneLogin_Saml2_Constants.RSA_SHA256,
        digest_algorithm=OneLogin_Saml2_Constants.SHA256,
    )
    data = signed if isinstance(signed, bytes) else signed.encode()
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))


def sign_query(query: str, signer: X509Signer) -> str:
    """The base64 RSA-SHA256 signature of an HTTP-Redirect query
    (``SAMLRequest=...&RelayState=...&SigAlg=...``, already URL-encoded)."""
    raw = signer.private_key.sign(query.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode()


SIG_ALG = RSA_SHA256
