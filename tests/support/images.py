"""Small real images for upload tests: PNGs built with zlib (decodable by browsers),
and headers of JPEG and WebP files (enough for the magic-byte and size checks)."""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def png(width: int = 32, height: int = 32, rgb: tuple[int, int, int] = (200, 30, 30),
        pad: int = 0) -> bytes:
    """A solid-colour RGB PNG; ``pad`` bytes of an ancillary chunk make it bigger."""
    row = b"\x00" + bytes(rgb) * width
    body = zlib.compress(row * height)
    out = (b"\x89PNG\r\n\x1a\n"
           + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + _chunk(b"IDAT", body))
    if pad:
        out += _chunk(b"tEXt", b"pad\x00" + b"x" * pad)
    return out + _chunk(b"IEND", b"")


def jpeg_header(width: int = 64, height: int = 32) -> bytes:
    """The start of a baseline JPEG: SOI, an APP0 segment, and the SOF0 frame header."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def webp_header(width: int = 48, height: int = 48) -> bytes:
    """An extended WebP (VP8X) header."""
    vp8x = (b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
            + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little"))
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32">'
       b'<script>alert(1)</script></svg>')
GIF = b"GIF89a\x20\x00\x20\x00\x00\x00\x00;"
