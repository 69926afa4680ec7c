"""``idp clients branding``, ``idp saml branding`` and ``idp units logo``: the
operator's way to set merchants' logos and colours and companies' logos (the rules
live in :mod:`idp.branding.service`; this module parses and reports)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from idp import audit
from idp.cli.units import actor, echo_json, fail


def _describe(row: Any) -> dict[str, Any]:
    from idp.branding import service

    ref = service.logo_ref(row)
    return {
        "logo": ref.file_name if ref else None,
        "logo_type": ref.media_type if ref else None,
        "logo_width": ref.width if ref else None,
        "logo_height": ref.height if ref else None,
        "primary_color": getattr(row, "primary_color", None),
        "background_color": getattr(row, "background_color", None),
    }


def _report(row: Any, as_json: bool, **extra: str) -> None:
    data = {**extra, **_describe(row)}
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key}: {value if value is not None else '-'}")


def _merchant_branding(
    merchant_id: str, logo: Path | None, no_logo: bool, primary: str | None,
    background: str | None, as_json: bool,
) -> None:
    from idp.branding import service
    from idp.branding.errors import BrandingError
    from idp.rights import SYSTEM

    who = audit.as_actor(actor())
    try:
        row = service.merchant_branding(SYSTEM, merchant_id)
        if logo is not None or no_logo:
            row = service.set_merchant_logo(
                SYSTEM, merchant_id, None if no_logo else _read(logo), who=who)
        if primary is not None or background is not None:
            keep_p = row.primary_color if row is not None else None
            keep_bg = row.background_color if row is not None else None
            row = service.set_merchant_colours(
                SYSTEM, merchant_id, keep_p if primary is None else primary,
                keep_bg if background is None else background, who=who)
    except BrandingError as exc:
        fail(as_json, exc.code, str(exc))
    _report(row, as_json, merchant_id=merchant_id)


def _read(path: Path | None) -> bytes:
    assert path is not None
    return path.read_bytes()


LOGO = click.option("--logo", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                    default=None, help="PNG, JPEG or WebP file (checked by its bytes, "
                    "at most IDP_LOGO_MAX_BYTES; SVG is refused).")
NO_LOGO = click.option("--no-logo", is_flag=True, help="Remove the logo (the default shows).")
PRIMARY = click.option("--primary-color", "primary", default=None,
                       help="#rrggbb for buttons and links (white text on it must reach "
                       "4.5:1); an empty value restores the default.")
BACKGROUND = click.option("--background-color", "background", default=None,
                          help="#rrggbb page background (text on it must reach 4.5:1); an "
                          "empty value restores the default.")
JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


def _merchant_command(argument: str, finder: str, what: str) -> click.Command:
    """``idp clients branding`` or ``idp saml branding``: the merchant behind the
    registration named by ``argument``, found by ``merchants.<finder>``."""

    @click.command("branding", context_settings={"ignore_unknown_options": True},
                   help=f"Show or change a {what}'s (merchant's) logo and colours on its "
                   "sign-in pages.")
    @click.argument(argument)
    @LOGO
    @NO_LOGO
    @PRIMARY
    @BACKGROUND
    @JSON
    @with_appcontext
    def command(logo: Path | None, no_logo: bool, primary: str | None,
                background: str | None, as_json: bool, **ref: str) -> None:
        from idp.release import merchants

        merchant = getattr(merchants, finder)(ref[argument])
        if merchant is None:
            fail(as_json, "not_found", f"no {what} {ref[argument]!r}")
        _merchant_branding(merchant.id, logo, no_logo, primary, background, as_json)

    return command


client_branding_command = _merchant_command("client_id", "of_client", "OIDC client")
saml_branding_command = _merchant_command("entity_id", "of_service_provider",
                                          "SAML service provider")


@click.command("logo")
@click.argument("unit")
@click.argument("file", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--remove", is_flag=True, help="Remove the unit's logo.")
@JSON
@with_appcontext
def unit_logo_command(unit: str, file: Path | None, remove: bool, as_json: bool) -> None:
    """Show, set (FILE: PNG, JPEG or WebP) or remove a unit's logo, shown on its
    people's dashboard (sub-units without their own show it too)."""
    from idp.branding import service
    from idp.branding.errors import BrandingError
    from idp.rights import SYSTEM
    from idp.units import registry

    found = registry.find(unit)
    if found is None:
        fail(as_json, "not_found", f"no unit {unit!r}")
    if file is not None and remove:
        fail(as_json, "invalid_input", "give FILE or --remove, not both")
    try:
        if file is None and not remove:
            row = service.unit_branding(SYSTEM, found.id)
        else:
            data = None if file is None else file.read_bytes()
            row = service.set_unit_logo(SYSTEM, found.id, data, who=audit.as_actor(actor()))
    except BrandingError as exc:
        fail(as_json, exc.code, str(exc))
    _report(row, as_json)
