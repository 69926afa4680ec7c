"""Checking an uploaded logo by its bytes, never by a file name or a declared type.

Accepted: PNG, JPEG and WebP, recognised by their magic bytes, whose header names
dimensions between :data:`MIN_SIDE` and :data:`MAX_SIDE` pixels. Everything else is
refused, SVG included: an SVG is a document that can carry scripts and external
references, and serving it safely needs a sanitiser this project does not ship
(``docs/oidc.md``, "Branding"). Only headers are read; no image is decoded here (the
browser decodes it, sandboxed by the image route's ``Content-Security-Policy``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from idp.branding.errors import BrandingError

MIN_SIDE = 16
MAX_SIDE = 2048
MAX_RATIO = 8  # a logo at most 8 times as wide as high (or as high as wide)

PNG = "image/png"
JPEG = "image/jpeg"
WEBP = "image/webp"
EXTENSIONS = {PNG: "png", JPEG: "jpg", WEBP: "webp"}


class LogoRefused(BrandingError):
    """An upload that is not an acceptable logo; ``code``: ``too_large``,
    ``unsupported_type``, ``malformed_image`` or ``bad_dimensions``."""


@dataclass(frozen=True)
class Logo:
    """A checked logo: its bytes, media type (from the magic bytes) and size."""

    data: bytes
    media_type: str
    width: int
    height: int


def _png(data: bytes) -> tuple[int, int]:
    # The IHDR chunk must come first (PNG §5.6): length 13, then width and height.
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise LogoRefused("malformed_image", "The PNG file has no valid header.")
    return struct.unpack(">II", data[16:24])


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(data: bytes) -> tuple[int, int]:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2:
            break
        if marker in _SOF:
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return width, height
        if marker in (0xD9, 0xDA):  # end of image or scan before a frame header
            break
        pos += 2 + length
    raise LogoRefused("malformed_image", "The JPEG file has no frame header.")


def _webp(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    raise LogoRefused("malformed_image", "The WebP file has no valid header.")


def sniff(data: bytes) -> str | None:
    """The media type the magic bytes name (PNG, JPEG or WebP), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if len(data) >= 16 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


def check(data: bytes, max_bytes: int) -> Logo:
    """``data`` as a :class:`Logo`, or :class:`LogoRefused`: more than ``max_bytes``,
    not PNG, JPEG or WebP by its magic bytes (whatever its name says), a header that
    does not parse, or sides outside ``MIN_SIDE``..``MAX_SIDE`` or too elongated."""
    if len(data) > max_bytes:
        raise LogoRefused("too_large", f"A logo may have at most {max_bytes} bytes.")
    media_type = sniff(data)
    if media_type is None:
        raise LogoRefused(
            "unsupported_type", "A logo must be a PNG, JPEG or WebP image (SVG is not accepted)."
        )
    parse = {PNG: _png, JPEG: _jpeg, WEBP: _webp}[media_type]
    width, height = parse(data)
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise LogoRefused(
            "bad_dimensions",
            f"A logo's sides must be {MIN_SIDE} to {MAX_SIDE} pixels (this one is "
            f"{width}x{height}).",
        )
    if max(width, height) > MAX_RATIO * min(width, height):
        raise LogoRefused("bad_dimensions", f"A logo may be at most {MAX_RATIO} times as "
                          "wide as high or as high as wide.")
    return Logo(data, media_type, width, height)
