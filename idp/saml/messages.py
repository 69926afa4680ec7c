"""Receiving and sending SAML protocol messages over the HTTP-Redirect and HTTP-POST
bindings (saml-bindings 3.4 and 3.5).

Receiving is split in two steps so the caller can look up the issuing SP in between:
:func:`receive` decodes and parses (caps, no DTD), :func:`verify_signature` then checks
the signature with that SP's certificates. For the Redirect binding the signature
covers the query octets exactly as received (3.4.4.1), so they are kept raw.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from flask import Request
from lxml import etree

from idp.crypto.keyring import X509Signer
from idp.saml import signatures, xmlsafe
from idp.saml.constants import BINDING_POST, BINDING_REDIRECT, NS_SAML, NS_SAMLP
from idp.saml.xmlsafe import MalformedMessage

MAX_RELAY_STATE = 1024
KINDS = ("AuthnRequest", "LogoutRequest", "LogoutResponse")
_NCNAME = re.compile(r"^[A-Za-z_][\w.\-]{0,255}$")


@dataclass
class Inbound:
    """A decoded, parsed, not yet authenticated inbound message."""

    kind: str
    binding: str
    root: etree._Element
    id: str
    issuer: str
    issue_instant: datetime
    destination: str | None
    relay_state: str | None
    signed_octets: bytes | None = None
    sig_alg: str | None = None
    signature: str | None = None
    signed: bool = False


def _raw_query(query_string: bytes) -> dict[str, str]:
    raw: dict[str, str] = {}
    for part in query_string.decode("ascii", "strict").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if name in raw:
            raise MalformedMessage(f"duplicate query parameter {name}")
        raw[name] = value
    return raw


def receive(request: Request, param: str, posted: Mapping[str, list[str]] | None = None) -> Inbound:
    """Decode the ``param`` (``SAMLRequest`` or ``SAMLResponse``) message of
    ``request`` from the Redirect (GET) or POST binding and parse it safely.
    ``posted`` is the form of a POST-binding message re-delivered through
    :mod:`idp.saml.bounce`.

    Raises :class:`MalformedMessage` for anything that is not a well-formed,
    size-capped SAML 2.0 protocol message."""
    signed_octets = sig_alg = signature = None
    if posted is None and request.method == "POST":
        posted = {k: request.form.getlist(k) for k in (param, "RelayState")}
    if posted is None:
        try:
            raw = _raw_query(request.query_string)
        except UnicodeDecodeError as exc:
            raise MalformedMessage("the query string is not ASCII") from exc
        if param not in raw:
            raise MalformedMessage(f"{param} is missing")
        value = urllib.parse.unquote_plus(raw[param])
        relay_state = urllib.parse.unquote_plus(raw["RelayState"]) if "RelayState" in raw else None
        xml = xmlsafe.inflate(xmlsafe.b64decode(value))
        binding = BINDING_REDIRECT
        if "Signature" in raw:
            sig_alg = urllib.parse.unquote_plus(raw.get("SigAlg", ""))
            signature = urllib.parse.unquote_plus(raw["Signature"])
            parts = [f"{param}={raw[param]}"]
            if "RelayState" in raw:
                parts.append(f"RelayState={raw['RelayState']}")
            parts.append(f"SigAlg={raw.get('SigAlg', '')}")
            signed_octets = "&".join(parts).encode()
    else:
        values = posted.get(param) or []
        if len(values) != 1:
            raise MalformedMessage(f"{param} is missing")
        relay_values = posted.get("RelayState") or []
        if len(relay_values) > 1:
            raise MalformedMessage("duplicate RelayState")
        relay_state = relay_values[0] if relay_values else None
        xml = xmlsafe.b64decode(values[0])
        binding = BINDING_POST
    if relay_state is not None and len(relay_state) > MAX_RELAY_STATE:
        raise MalformedMessage("RelayState is too long")
    root = xmlsafe.parse(xml)
    return _inbound(root, binding, relay_state, signed_octets, sig_alg, signature)


def _inbound(
    root: etree._Element,
    binding: str,
    relay_state: str | None,
    signed_octets: bytes | None,
    sig_alg: str | None,
    signature: str | None,
) -> Inbound:
    qname = etree.QName(root)
    if qname.namespace != NS_SAMLP or qname.localname not in KINDS:
        raise MalformedMessage("not a SAML 2.0 protocol message")
    if root.get("Version") != "2.0":
        raise MalformedMessage("unsupported SAML version")
    message_id = root.get("ID") or ""
    if not _NCNAME.match(message_id):
        raise MalformedMessage("the message ID is missing or invalid")
    issuers = root.findall(f"{{{NS_SAML}}}Issuer")
    issuer = xmlsafe.text_of(issuers[0]) if len(issuers) == 1 else None
    if not issuer:
        raise MalformedMessage("the message has no Issuer")
    return Inbound(
        kind=qname.localname,
        binding=binding,
        root=root,
        id=message_id,
        issuer=issuer,
        issue_instant=xmlsafe.parse_instant(root.get("IssueInstant")),
        destination=root.get("Destination"),
        relay_state=relay_state,
        signed_octets=signed_octets,
        sig_alg=sig_alg,
        signature=signature,
    )


def verify_signature(msg: Inbound, certificates: list[str], required: bool) -> bool:
    """Check the message's signature against the SP's ``certificates``: the query
    signature for the Redirect binding (an XML signature inside is then ignored,
    3.4.4.1), the enveloped signature for POST. Returns whether the message is
    signed; raises :class:`MalformedMessage` for an invalid or weak signature, or
    for an unsigned message when ``required``."""
    if msg.binding == BINDING_REDIRECT:
        signed = msg.signature is not None
        if signed:
            if not certificates:
                raise MalformedMessage("the message is signed but no certificate is registered")
            assert msg.signed_octets is not None and msg.signature is not None
            signatures.verify_query(msg.signed_octets, msg.sig_alg, msg.signature, certificates)
    else:
        signed = signatures.verify_enveloped(msg.root, certificates)
    if required and not signed:
        raise MalformedMessage("this service provider must sign its requests")
    msg.signed = signed
    return signed


def redirect_url(
    endpoint: str, param: str, xml: bytes, relay_state: str | None, signer: X509Signer
) -> str:
    """``endpoint`` with the deflated message, RelayState and an RSA-SHA256 query
    signature (saml-bindings 3.4.4)."""
    encoded = base64.b64encode(xmlsafe.deflate(xml)).decode()
    parts = [f"{param}={urllib.parse.quote_plus(encoded)}"]
    if relay_state:
        parts.append(f"RelayState={urllib.parse.quote_plus(relay_state)}")
    parts.append(f"SigAlg={urllib.parse.quote_plus(signatures.SIG_ALG)}")
    query = "&".join(parts)
    query += "&Signature=" + urllib.parse.quote_plus(signatures.sign_query(query, signer))
    separator = "&" if urllib.parse.urlsplit(endpoint).query else "?"
    return endpoint + separator + query


def post_value(xml: bytes) -> str:
    """The base64 form value of a message for the POST binding (3.5.4)."""
    return base64.b64encode(xml).decode()
