"""A merchant's colours: ``#rrggbb`` and readable (WCAG 2.1 AA, 4.5:1 for body text).

The stylesheet (``idp/static/unitgate.css``) draws white text on the primary colour
(buttons), the primary colour as link text on the white card and on the page
background, and the muted and body text on the page background. A colour pair that
fails any of these contrasts is *refused*, never silently adjusted, so what a merchant
sets is what its customers see (``docs/oidc.md``, "Branding").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from idp.branding.errors import BrandingError

HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
AA = 4.5  # WCAG 2.1 SC 1.4.3, normal text

WHITE = "#ffffff"
TEXT = "#1d2330"  # --fg
MUTED = "#5b6475"  # --muted: the lightest text drawn on the background
DEFAULT_PRIMARY = "#1f5fbf"  # --accent
DEFAULT_BACKGROUND = "#f5f7fa"  # --bg


class ColourRefused(BrandingError):
    """``code``: ``invalid_colour`` (not ``#rrggbb``) or ``low_contrast``; ``field``:
    ``primary_color`` or ``background_color``."""


@dataclass(frozen=True)
class Colours:
    primary: str | None
    background: str | None


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(colour: str) -> float:
    """The relative luminance of ``#rrggbb`` (WCAG 2.1, "relative luminance")."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(a: str, b: str) -> float:
    """The contrast ratio of two colours, 1 to 21."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _normal(value: str | None, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not HEX.match(value):
        raise ColourRefused("invalid_colour", f"{field} must be a colour #rrggbb.", field)
    return value.lower()


def _need(a: str, b: str, field: str, what: str) -> None:
    ratio = contrast(a, b)
    if ratio < AA:
        raise ColourRefused(
            "low_contrast",
            f"{field}: {what} has a contrast of {ratio:.2f}:1, below the 4.5:1 that "
            "WCAG AA asks for.",
            field,
        )


def check(primary: str | None, background: str | None) -> Colours:
    """The colours in lower case, or :class:`ColourRefused`. None (or empty) keeps
    the default for that colour; the contrasts are checked against whatever colour
    will be shown beside it."""
    p = _normal(primary, "primary_color")
    bg = _normal(background, "background_color")
    shown_p, shown_bg = p or DEFAULT_PRIMARY, bg or DEFAULT_BACKGROUND
    if p is not None:
        _need(p, WHITE, "primary_color", "white text on the primary colour")
    if bg is not None:
        _need(MUTED, bg, "background_color", "grey text on the background")
        _need(TEXT, bg, "background_color", "text on the background")
    if p is not None or bg is not None:
        _need(shown_p, shown_bg, "primary_color" if p else "background_color",
              "a link in the primary colour on the background")
    return Colours(p, bg)
