"""The console's start page (``/admin/``), the unit switcher and a unit's first page."""

from __future__ import annotations

from flask import Response, abort, request, url_for

from idp.console import nav
from idp.console.blueprint import bp
from idp.console.guard import Viewer, console_page, well_formed_unit_id
from idp.rights import permissions
from idp.web.redirects import redirect


@bp.get("")
def home_without_slash() -> Response:
    """``/admin`` is the start page too (308 to ``/admin/``)."""
    return redirect(url_for("console.home"), 308)


@bp.get("/")
@console_page
def home(viewer: Viewer) -> Response:
    """The units the person administers; with exactly one (and no operator entry
    point), 303 straight to it. Staff see the link to the operator console."""
    found = viewer.units()
    if len(found) == 1 and not viewer.is_staff:
        return redirect(url_for("console.unit_home", unit=found[0].id), 303)
    return viewer.render("console/home.html", units=found)


@bp.get("/switch")
@console_page
def switch(viewer: Viewer) -> Response:
    """The unit switcher's form (a GET, so it works without JavaScript): 303 to the
    chosen unit's first page, which decides whether the person may see it."""
    unit_id = request.args.get("unit", "")
    if not well_formed_unit_id(unit_id):
        return redirect(url_for("console.home"), 303)
    return redirect(url_for("console.unit_home", unit=unit_id), 303)


@bp.get("/units/<unit>/")
@console_page
def unit_home(viewer: Viewer, unit: str) -> Response:
    """A unit's first page: the first navigation entry the person may see there.
    404 where they hold nothing (or no such unit), 403 when no page is theirs."""
    held = permissions(viewer.actor, unit) if well_formed_unit_id(unit) else frozenset()
    if not held:
        abort(404)
    entries = nav.visible(held)
    if not entries:
        abort(403)
    return redirect(url_for(entries[0].endpoint, unit=unit), 303)
