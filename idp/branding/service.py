"""Storing logos and colours (audited, authorised by :func:`idp.rights.require`) and
reading what a page shows.

Who may change what:

* a merchant's logo and colours: platform-wide ``units.manage`` (the operator's CLI
  and operator administration clients; merchants belong to no unit);
* a company's (any unit's) logo: ``units.manage`` in that unit, as for its other
  settings; a unit without a logo shows its nearest ancestor's.

Every logo is checked by :func:`idp.branding.images.check` against
``IDP_LOGO_MAX_BYTES``, every colour by :func:`idp.branding.colours.check`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from idp import audit
from idp.branding import colours, images
from idp.branding.errors import BrandingError
from idp.release import merchants
from idp.rights import Actor, require
from idp.rights.authorization import audit_actor
from idp.services import settings
from idp.store import branding_repo, rights_repo
from idp.store.models import Branding
from idp.store.unit_of_work import atomic

PERMISSION = "units.manage"
BUILT_IN_LOGO = Path(__file__).resolve().parent.parent / "static" / "logo.svg"
SVG = "image/svg+xml"


@dataclass(frozen=True)
class LogoRef:
    """Where a logo is served (its hash and media type name the file) and its size in
    pixels (None for the built-in SVG)."""

    sha256: str
    media_type: str
    size: tuple[int, int] | None

    @property
    def file_name(self) -> str:
        return f"{self.sha256}.{images.EXTENSIONS.get(self.media_type, 'svg')}"

    @property
    def width(self) -> int | None:
        return self.size[0] if self.size else None

    @property
    def height(self) -> int | None:
        return self.size[1] if self.size else None


@dataclass(frozen=True)
class MerchantLook:
    """What a merchant's sign-in pages show: its logo (None: the default) and colours
    (``version`` names them in the stylesheet's URL; None: no stylesheet)."""

    logo: LogoRef | None
    primary: str | None
    background: str | None

    @property
    def version(self) -> str | None:
        if self.primary is None and self.background is None:
            return None
        text = f"{self.primary or ''}{self.background or ''}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class DefaultLogo:
    data: bytes
    ref: LogoRef


def load_default(path: str | None) -> DefaultLogo:
    """The global default logo: ``IDP_DEFAULT_LOGO`` (checked like an upload, any
    size up to 5 MB) or the built-in SVG that ships in ``idp/static``."""
    if path:
        data = Path(path).read_bytes()
        logo = images.check(data, 5_000_000)
        ref = LogoRef(hashlib.sha256(data).hexdigest(), logo.media_type, (logo.width, logo.height))
        return DefaultLogo(data, ref)
    data = BUILT_IN_LOGO.read_bytes()
    return DefaultLogo(data, LogoRef(hashlib.sha256(data).hexdigest(), SVG, None))


def _ref(row: Branding | None) -> LogoRef | None:
    if row is None or row.logo_sha256 is None or row.logo_type is None:
        return None
    size = (row.logo_width, row.logo_height) if row.logo_width and row.logo_height else None
    return LogoRef(row.logo_sha256, row.logo_type, size)


def _describe(row: Branding) -> dict[str, object]:
    return {
        "logo": row.logo_sha256, "logo_type": row.logo_type,
        "primary_color": row.primary_color, "background_color": row.background_color,
    }


def _merchant(actor: Actor, merchant_id: str) -> str:
    require(actor, PERMISSION, None)
    row = merchants.get(merchant_id)
    if row is None or row.status != merchants.ACTIVE:
        raise BrandingError("not_found", f"no merchant {merchant_id!r}")
    return row.id


def _unit(actor: Actor, unit_id: str) -> str:
    require(actor, PERMISSION, unit_id)  # an unknown unit is a foreign one (404)
    return unit_id


def _store_logo(row: Branding, data: bytes | None) -> None:
    if data is None:
        row.logo = row.logo_type = row.logo_sha256 = None
        row.logo_width = row.logo_height = None
        return
    logo = images.check(data, settings().logo_max_bytes)
    row.logo, row.logo_type = logo.data, logo.media_type
    row.logo_sha256 = hashlib.sha256(logo.data).hexdigest()
    row.logo_width, row.logo_height = logo.width, logo.height


def set_merchant_logo(
    actor: Actor, merchant_id: str, data: bytes | None, who: audit.Actor | None = None
) -> Branding:
    """Store (``data``) or remove (None) a merchant's logo. Refused:
    :class:`idp.rights.NotPermitted`, :class:`BrandingError`,
    :class:`idp.branding.images.LogoRefused`."""
    mid = _merchant(actor, merchant_id)
    with atomic():
        row = branding_repo.for_owner(merchant_id=mid)
        _store_logo(row, data)
        audit.record(who or audit_actor(actor), "merchant.branding", mid, _describe(row))
    return row


def set_merchant_colours(
    actor: Actor, merchant_id: str, primary: str | None, background: str | None,
    who: audit.Actor | None = None,
) -> Branding:
    """Set a merchant's colours (None or empty: the default), both at once, checked by
    :func:`idp.branding.colours.check` (:class:`~idp.branding.colours.ColourRefused`)."""
    mid = _merchant(actor, merchant_id)
    checked = colours.check(primary, background)
    with atomic():
        row = branding_repo.for_owner(merchant_id=mid)
        row.primary_color, row.background_color = checked.primary, checked.background
        audit.record(who or audit_actor(actor), "merchant.branding", mid, _describe(row))
    return row


def set_unit_logo(
    actor: Actor, unit_id: str, data: bytes | None, who: audit.Actor | None = None
) -> Branding:
    """Store (``data``) or remove (None) a unit's logo (``units.manage`` there)."""
    uid = _unit(actor, unit_id)
    with atomic():
        row = branding_repo.for_owner(unit_id=uid)
        _store_logo(row, data)
        audit.record(who or audit_actor(actor), "unit.logo", uid,
                     {"logo": row.logo_sha256, "logo_type": row.logo_type}, unit_id=uid)
    return row


def merchant_branding(actor: Actor, merchant_id: str) -> Branding | None:
    """A merchant's branding as stored (None: none yet), for its administrators."""
    return branding_repo.of_merchant(_merchant(actor, merchant_id))


def unit_branding(actor: Actor, unit_id: str) -> Branding | None:
    """A unit's own branding as stored (None: none), for its administrators."""
    return branding_repo.of_units([_unit(actor, unit_id)]).get(unit_id)


def logo_ref(row: Branding | None) -> LogoRef | None:
    """Where a stored branding's logo is served, or None."""
    return _ref(row)


def merchant_look(merchant_id: str) -> MerchantLook | None:
    """What a merchant's sign-in pages show, or None (no branding: the defaults)."""
    row = branding_repo.of_merchant(merchant_id)
    if row is None:
        return None
    return MerchantLook(_ref(row), row.primary_color, row.background_color)


def company_logos(unit_ids: list[str]) -> dict[str, LogoRef]:
    """For each unit, its own logo or its nearest ancestor's (units without any are
    absent)."""
    chains = {u: rights_repo.chain_ids(u) for u in dict.fromkeys(unit_ids) if u}
    found = branding_repo.of_units({u for chain in chains.values() for u in chain})
    out: dict[str, LogoRef] = {}
    for unit_id, chain in chains.items():
        for candidate in chain:
            ref = _ref(found.get(candidate))
            if ref is not None:
                out[unit_id] = ref
                break
    return out


def stored_logo(sha256: str) -> tuple[bytes, str] | None:
    """A stored logo's bytes and media type by hash, or None."""
    return branding_repo.logo_by_hash(sha256)
