"""Hardened reading of inbound SAML XML (SECURITY.md, SAML: "DTDs and entities
forbidden; DEFLATE input capped in size").

* Any document type declaration is refused before and after parsing, so no entity
  (internal, external or parameter) is ever expanded and no network or file is read.
* The base64 text and the inflated DEFLATE stream are capped at :data:`MAX_XML_BYTES`;
  the stream is inflated with a ``max_length`` so a "zip bomb" never allocates more.
* Text of an element is read only when it has no child nodes (comment injection
  such as ``user@corp.example<!---->.evil`` is refused, not silently joined).
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from datetime import UTC, datetime

from lxml import etree

MAX_XML_BYTES = 64 * 1024
# base64 of MAX_XML_BYTES plus line breaks some senders insert
MAX_BASE64_CHARS = MAX_XML_BYTES * 4 // 3 + 4096

_DOCTYPE = re.compile(rb"<!\s*DOCTYPE|<!\s*ENTITY", re.IGNORECASE)


class MalformedMessage(ValueError):
    """Inbound SAML that must not be processed; the message is safe to show."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
        remove_blank_text=False,
        collect_ids=False,
    )


def parse(data: bytes, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    """Parse ``data`` as XML with DTDs, entities and network access forbidden.

    Raises :class:`MalformedMessage` for a DOCTYPE, a document over ``max_bytes`` or
    anything that is not well-formed XML."""
    if len(data) > max_bytes:
        raise MalformedMessage("the SAML message is too large")
    if _DOCTYPE.search(data):
        raise MalformedMessage("document type declarations are not allowed")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise MalformedMessage("the SAML message is not well-formed XML") from exc
    docinfo = root.getroottree().docinfo
    doctype = docinfo.doctype  # type: ignore[union-attr]  # lxml-stubs lack DocInfo.doctype
    if doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise MalformedMessage("document type declarations are not allowed")
    return root


def b64decode(text: str) -> bytes:
    """Strict base64 (whitespace allowed), capped at :data:`MAX_BASE64_CHARS`."""
    if len(text) > MAX_BASE64_CHARS:
        raise MalformedMessage("the SAML message is too large")
    compact = "".join(text.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedMessage("the SAML message is not valid base64") from exc


def inflate(data: bytes) -> bytes:
    """Inflate a raw DEFLATE stream (saml-bindings 3.4.4.1) to at most
    :data:`MAX_XML_BYTES`; a longer or truncated stream is refused."""
    inflater = zlib.decompressobj(wbits=-15)
    try:
        out = inflater.decompress(data, MAX_XML_BYTES + 1)
    except zlib.error as exc:
        raise MalformedMessage("the SAML message is not DEFLATE-encoded") from exc
    if len(out) > MAX_XML_BYTES or inflater.unconsumed_tail:
        raise MalformedMessage("the SAML message is too large once inflated")
    if not inflater.eof:
        raise MalformedMessage("the SAML message is truncated")
    return out


def deflate(data: bytes) -> bytes:
    """Raw DEFLATE for the HTTP-Redirect binding."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def text_of(element: etree._Element | None) -> str | None:
    """The text of a leaf element, stripped; None when absent. An element with child
    nodes (elements or comments) is refused."""
    if element is None:
        return None
    if len(element):
        raise MalformedMessage(f"unexpected content in <{etree.QName(element).localname}>")
    return (element.text or "").strip()


def parse_instant(value: str | None) -> datetime:
    """An xs:dateTime in UTC (saml-core 1.3.3), e.g. ``2026-01-01T10:00:00Z``."""
    if not value:
        raise MalformedMessage("a required timestamp is missing")
    text = value.strip()
    if not text.endswith("Z"):
        raise MalformedMessage("SAML timestamps must be in UTC (ending in Z)")
    try:
        parsed = datetime.fromisoformat(text[:-1])
    except ValueError as exc:
        raise MalformedMessage("invalid SAML timestamp") from exc
    if parsed.tzinfo is not None:
        raise MalformedMessage("invalid SAML timestamp")
    return parsed.replace(tzinfo=UTC)


def format_instant(moment: datetime) -> str:
    """``moment`` as a SAML UTC timestamp with second precision."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_bool(value: str | None, default: bool = False) -> bool:
    """An xs:boolean attribute."""
    if value is None:
        return default
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise MalformedMessage("invalid boolean attribute")
