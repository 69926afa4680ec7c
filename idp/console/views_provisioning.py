"""The console's provisioning page (``/admin/units/<unit>/provisioning``): the unit's
SCIM tokens (``scim.manage``: create, shown once; list; revoke) and its LDAP
directory (``ldap.manage``: settings, schedule, the last run and its errors).

Tokens go through :mod:`idp.provisioning.scim_tokens` (audited there). A new token's
plaintext is shown on the one page the creating POST leads to: it travels there in
the session's one-time form state (the ephemeral store, read once), never in a URL,
and is kept nowhere else. The LDAP directory is read through
:mod:`idp.ldap.directories`; what it stores of a run is its summary (counts and up to
a few error samples) of the last run, or, for a run that failed as a whole, its cause
(:func:`idp.ldap.sync.record_failure`)."""

from __future__ import annotations

from flask import Response, abort, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp.console import nav
from idp.console.accesses import clean, valid_id
from idp.console.blueprint import bp
from idp.console.guard import UnitPage, unit_page
from idp.provisioning import scim_tokens
from idp.store import ldap_repo, scim_repo

SCIM = "scim.manage"
LDAP = "ldap.manage"
MAX_NAME = 200

nav.register("scim", _l("SCIM tokens"), "console.scim", SCIM, order=60)
nav.register("ldap", _l("LDAP directory"), "console.ldap", LDAP, order=65)


@bp.get("/units/<unit>/scim")
@unit_page(SCIM)
def scim(page: UnitPage) -> Response:
    """The unit's SCIM tokens (never their values) and the form for a new one; right
    after a creation, the new token (``values["new_token"]`` of the form state)."""
    resp = page.render(
        "console/scim.html", current="scim", tokens=scim_tokens.listing(page.unit.id)
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/units/<unit>/scim")
@unit_page(SCIM)
def scim_create(page: UnitPage) -> Response:
    """A new token: its value is shown once on the next page."""
    name = clean(request.form.get("name"), MAX_NAME)
    if not name:
        page.remember(errors={"name": _("Give the token a name (e.g. the HR system's).")})
        return page.see_other("console.scim")
    _row, token = scim_tokens.create(page.unit.id, name, page.actor.audit_name())
    page.remember(
        notice=_("The token was created. Copy it now: it is shown only once."),
        values={"new_token": token},
    )
    return page.see_other("console.scim")


@bp.post("/units/<unit>/scim/<token_id>/revoke")
@unit_page(SCIM)
def scim_revoke(page: UnitPage, token_id: str) -> Response:
    """Revoke one of the unit's tokens at once."""
    row = scim_repo.token_by_id(token_id) if valid_id(token_id) else None
    if row is None or row.unit_id != page.unit.id:
        abort(404)
    scim_tokens.revoke(row.id, page.actor.audit_name())
    page.remember(notice=_("The token %(name)s was revoked.", name=row.name))
    return page.see_other("console.scim")


@bp.get("/units/<unit>/ldap")
@unit_page(LDAP)
def ldap(page: UnitPage) -> Response:
    """The unit's LDAP directory: its settings (never the bind password), schedule,
    and the last run with its error samples, or why it failed."""
    from idp.ldap.directories import describe

    row = ldap_repo.directory_for_unit(page.unit.id)
    return page.render(
        "console/ldap.html",
        current="ldap",
        directory=describe(row) if row is not None else None,
        last_run_at=row.last_run_at if row is not None else None,
    )
