"""Branding (issue 16 item 5): a company's logo, and a merchant's logo and colours.

A logo is uploaded as the raw bytes of a PNG, JPEG or WebP file
(``application/octet-stream``): its type is read from its magic bytes, never from a
name or a declared type; SVG is refused. At most ``IDP_LOGO_MAX_BYTES`` (413
``too_large``), sides of 16 to 2048 pixels. A unit's logo needs ``units.manage`` in
the unit (another unit's admin gets 404); a merchant's branding needs it
platform-wide (the operator's administration clients). The rules live in
:mod:`idp.branding.service`.
"""

from __future__ import annotations

from typing import Any

from flask import url_for
from pydantic import BaseModel, ConfigDict, Field

from idp.api import bp
from idp.api.endpoint import Call, authorize, endpoint
from idp.api.problems import Problem, not_found
from idp.branding import service
from idp.branding.errors import BrandingError
from idp.rights import NotPermitted
from idp.services import settings
from idp.store.models import Branding

OCTETS = "application/octet-stream"
COLOUR = r"^#[0-9a-fA-F]{6}$"


class LogoOut(BaseModel):
    """A logo as stored: where it is served (the URL carries its SHA-256) and its size;
    all null when there is none."""

    url: str | None = Field(description="Relative URL of the image (cacheable for ever)")
    media_type: str | None
    width: int | None
    height: int | None


class BrandingOut(BaseModel):
    """A merchant's branding: its logo and colours (null: the default)."""

    merchant_id: str
    logo: LogoOut
    primary_color: str | None
    background_color: str | None


class ColoursIn(BaseModel):
    """Both colours at once; null or absent restores the default of that colour."""

    model_config = ConfigDict(extra="forbid")

    primary_color: str | None = Field(None, pattern=COLOUR, description="#rrggbb; white "
                                      "text on it and it on the background need 4.5:1")
    background_color: str | None = Field(None, pattern=COLOUR, description="#rrggbb; text "
                                         "on it needs 4.5:1")


def _logo(row: Branding | None) -> LogoOut:
    ref = service.logo_ref(row)
    if ref is None:
        return LogoOut(url=None, media_type=None, width=None, height=None)
    return LogoOut(url=url_for("branding.logo", name=ref.file_name), media_type=ref.media_type,
                   width=ref.width, height=ref.height)


def _branding(merchant_id: str, row: Branding | None) -> BrandingOut:
    return BrandingOut(
        merchant_id=merchant_id, logo=_logo(row),
        primary_color=row.primary_color if row else None,
        background_color=row.background_color if row else None,
    )


def _upload(call: Call) -> bytes:
    limit = settings().logo_max_bytes
    data: bytes = call.body.read(limit + 1)
    if len(data) > limit:
        raise Problem(413, "too_large", f"A logo may have at most {limit} bytes.")
    return data


def _run(merchant_id: str | None, action: Any) -> Any:
    """Run a service call, answering its refusals as the API does."""
    try:
        return action()
    except NotPermitted as exc:
        if exc.foreign:
            raise not_found("merchant" if merchant_id else "unit") from exc
        raise Problem(403, "forbidden", "This needs the permission 'units.manage'.") from exc
    except BrandingError as exc:
        if exc.code == "not_found":
            raise not_found("merchant") from exc
        status = 413 if exc.code == "too_large" else 422
        errors = [{"pointer": f"/body/{exc.field}", "detail": str(exc)}] if exc.field else None
        raise Problem(status, exc.code, str(exc), errors=errors) from exc


@endpoint(bp, "GET", "/units/{unit_id}/logo", summary="The unit's logo", tag="branding",
          response=LogoOut, permission="units.manage")
def get_unit_logo(call: Call, unit_id: str) -> LogoOut:
    """The unit's own logo (null fields: none; its people's dashboard then shows the
    nearest ancestor's, if any)."""
    return _logo(_run(None, lambda: service.unit_branding(call.actor, unit_id)))


@endpoint(bp, "PUT", "/units/{unit_id}/logo", summary="Set the unit's logo", tag="branding",
          response=LogoOut, permission="units.manage", body_media=OCTETS,
          body_limit=lambda: settings().logo_max_bytes)
def put_unit_logo(call: Call, unit_id: str) -> LogoOut:
    """Replace the unit's logo with the body: the bytes of a PNG, JPEG or WebP image
    (by its magic bytes; SVG refused), at most `IDP_LOGO_MAX_BYTES` (413 `too_large`),
    sides 16 to 2048 pixels (422 `unsupported_type`, `malformed_image`,
    `bad_dimensions`). Shown on the dashboard of the unit's people and its sub-units'."""
    data = _upload(call)
    return _logo(_run(None, lambda: service.set_unit_logo(call.actor, unit_id, data)))


@endpoint(bp, "DELETE", "/units/{unit_id}/logo", summary="Remove the unit's logo",
          tag="branding", permission="units.manage")
def delete_unit_logo(call: Call, unit_id: str) -> None:
    """Remove the unit's own logo (idempotent)."""
    _run(None, lambda: service.set_unit_logo(call.actor, unit_id, None))


@endpoint(bp, "GET", "/merchants/{merchant_id}/branding", summary="A merchant's branding",
          tag="branding", response=BrandingOut)
def get_merchant_branding(call: Call, merchant_id: str) -> BrandingOut:
    """The merchant's logo and colours on its sign-in pages. Platform-wide
    `units.manage` (operator clients); others get 404."""
    authorize(call.actor, "units.manage", None, "merchant")
    row = _run(merchant_id, lambda: service.merchant_branding(call.actor, merchant_id))
    return _branding(merchant_id, row)


@endpoint(bp, "PUT", "/merchants/{merchant_id}/logo", summary="Set a merchant's logo",
          tag="branding", response=BrandingOut, body_media=OCTETS,
          body_limit=lambda: settings().logo_max_bytes)
def put_merchant_logo(call: Call, merchant_id: str) -> BrandingOut:
    """Replace the merchant's logo (the same checks as a unit's logo)."""
    authorize(call.actor, "units.manage", None, "merchant")
    data = _upload(call)
    row = _run(merchant_id, lambda: service.set_merchant_logo(call.actor, merchant_id, data))
    return _branding(merchant_id, row)


@endpoint(bp, "DELETE", "/merchants/{merchant_id}/logo", summary="Remove a merchant's logo",
          tag="branding")
def delete_merchant_logo(call: Call, merchant_id: str) -> None:
    """Remove the merchant's logo: its pages show the default logo."""
    authorize(call.actor, "units.manage", None, "merchant")
    _run(merchant_id, lambda: service.set_merchant_logo(call.actor, merchant_id, None))


@endpoint(bp, "PUT", "/merchants/{merchant_id}/colours", summary="Set a merchant's colours",
          tag="branding", body=ColoursIn, response=BrandingOut)
def put_merchant_colours(call: Call, merchant_id: str) -> BrandingOut:
    """Set both colours (`#rrggbb`; null: the default). Refused with 422
    `low_contrast` when white text on the primary colour, the primary colour on the
    background, or text on the background falls below WCAG AA's 4.5:1."""
    authorize(call.actor, "units.manage", None, "merchant")
    body: ColoursIn = call.body
    row = _run(merchant_id, lambda: service.set_merchant_colours(
        call.actor, merchant_id, body.primary_color, body.background_color))
    return _branding(merchant_id, row)
