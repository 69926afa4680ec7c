"""Who may see a console page: the one guard every console view goes through.

* **Authentication**: the browser's Unitgate session, as on the dashboard
  (:func:`idp.interaction.signed_in.current`). Without one, a GET starts the e-mail-code
  login that returns to the page (:func:`idp.login.common.start_own_login`); a POST
  goes 303 to the console's start page (which then starts it). A session that acts as
  someone else (impersonation) is refused with 403: acting as a person is for seeing
  what they see, not for administering as them (as the administration API decides).
* **Authorisation**: the person acts as :func:`idp.rights.person` (staff or account);
  :func:`unit_page` calls :func:`idp.rights.require` with the page's permission and the
  unit of the URL. A unit where the person holds nothing (or that does not exist)
  answers 404, so its existence does not leak; a missing permission 403. Both pages
  speak the page's language (:mod:`idp.errors`).
* **Forms**: every POST carries the CSRF token (``csrf_token`` field, checked app-wide
  by Flask-WTF; a missing or wrong one answers 400 "This form has expired") and is
  answered 303 (:meth:`UnitPage.see_other`). What the following GET shows (a notice,
  field errors, the values typed) travels in the ephemeral store under the session
  (:meth:`UnitPage.remember`, :func:`idp.login.formstate.remember_for_session`).

A view of a unit's page::

    @bp.get("/units/<unit>/domains")
    @unit_page("domains.manage")
    def domains(page: UnitPage) -> Response:
        return page.render("console/domains.html", current="domains", rows=...)

The URL value must be called ``unit`` (the unit's id); other URL values reach the view
as keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import Response, abort, render_template, request, url_for

from idp.accounts import access_admin
from idp.console import nav
from idp.interaction import signed_in
from idp.login.common import start_own_login
from idp.login.formstate import FormState, recall_for_session, remember_for_session
from idp.rights import Actor, NotPermitted, person, require
from idp.store.models import Account, Session, Unit
from idp.units import registry as units
from idp.web.redirects import redirect

FORM_KIND = "consoleform"
OPERATOR_PATH = "/admin/operator/"
MAX_UNIT_ID = 64


@dataclass
class Viewer:
    """The signed-in person looking at the console."""

    session: Session
    account: Account
    actor: Actor

    @property
    def is_staff(self) -> bool:
        return self.actor.kind == "staff"

    def units(self) -> list[Unit]:
        """The units this person administers by their own standing (the unit
        switcher and the start page): where they hold a permission some console page
        needs (:func:`idp.console.nav.permissions_used`), sorted by name. Sub-units
        are reached from their parent."""
        ids = access_admin.roots_where(self.actor, nav.permissions_used())
        found = [u for u in (units.find(i) for i in ids) if u is not None and u.id in ids]
        return sorted(found, key=lambda u: (u.name.casefold(), u.id))

    def remember(
        self,
        notice: str | None = None,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> None:
        """Keep what the next console page must show (texts already translated)."""
        state = FormState(errors=errors or {}, values=values or {}, notice=notice)
        remember_for_session(FORM_KIND, self.session.id_hash, state)

    def recall(self) -> FormState:
        """What the last POST left for this page (read once)."""
        return recall_for_session(FORM_KIND, self.session.id_hash)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        """Render a console page (``templates/console/...``, extending
        ``console/base.html``) with the switcher, the operator link and what the
        last POST left (``notice``, ``errors``, ``values``)."""
        state = self.recall() if request.method == "GET" else FormState()
        context.setdefault("unit", None)
        context.setdefault("nav_entries", [])
        context.setdefault("current", None)
        html = render_template(
            template,
            viewer=self,
            switch_units=self.units(),
            operator_path=OPERATOR_PATH if self.is_staff else None,
            notice=state.notice,
            errors=state.errors,
            values=state.values,
            **context,
        )
        return Response(html, status=status, mimetype="text/html")


@dataclass
class UnitPage:
    """A console page about one unit, for a viewer who passed the page's permission."""

    viewer: Viewer
    unit: Unit
    held: frozenset[str] = field(default_factory=frozenset)

    @property
    def actor(self) -> Actor:
        return self.viewer.actor

    def can(self, permission: str) -> bool:
        """Whether the viewer holds ``permission`` here (to show or hide a control;
        the action's own view decides again through its guard or service)."""
        return permission in self.held

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        """:meth:`Viewer.render` with the unit, its navigation and ``page``."""
        return self.viewer.render(
            template, status=status, unit=self.unit, page=self,
            nav_entries=nav.visible(self.held), **context,
        )

    @property
    def remember(self) -> Callable[..., None]:
        """:meth:`Viewer.remember` (what the next page shows)."""
        return self.viewer.remember

    def see_other(self, endpoint: str, anchor: str | None = None, **values: Any) -> Response:
        """303 See Other to ``endpoint`` of this unit (after a POST)."""
        target = url_for(endpoint, unit=self.unit.id, **values)
        return redirect(target + (f"#{anchor}" if anchor else ""), code=303)


def current_viewer() -> Viewer | Response:
    """The signed-in viewer, or the answer for a browser without one (the login for
    a GET, 303 to the console for a POST); 403 for a session acting as someone."""
    login = signed_in.current()
    if login is None:
        if request.method in ("GET", "HEAD"):
            return start_own_login(request.full_path.rstrip("?"))
        return redirect(url_for("console.home"), code=303)
    row, account = login
    if row.impersonation_id is not None:
        abort(403)
    return Viewer(session=row, account=account, actor=person(account.id))


def open_unit(viewer: Viewer, unit_id: str, permission: str) -> UnitPage:
    """The unit page for ``viewer`` when they hold ``permission`` in ``unit_id``
    (:func:`idp.rights.require`); 404 for a unit where they hold nothing or that does
    not exist (or a malformed id), 403 otherwise."""
    if not well_formed_unit_id(unit_id):
        abort(404)
    try:
        held = require(viewer.actor, permission, unit_id)
    except NotPermitted as exc:
        abort(404 if exc.foreign else 403)
    unit = units.find(unit_id)
    if unit is None or unit.id != unit_id:
        abort(404)
    return UnitPage(viewer=viewer, unit=unit, held=held)


def well_formed_unit_id(value: str) -> bool:
    """Whether ``value`` can be a unit's id (letters and digits): anything else is
    no unit, and never reaches a query (PostgreSQL refuses a NUL byte)."""
    return 0 < len(value) <= MAX_UNIT_ID and value.isalnum()


View = Callable[..., Response]


def console_page(view: Callable[..., Response]) -> View:
    """For a console page about no unit in particular: the view gets the
    :class:`Viewer` as its first argument."""

    @wraps(view)
    def wrapper(**kwargs: Any) -> Response:
        viewer = current_viewer()
        if isinstance(viewer, Response):
            return viewer
        return view(viewer, **kwargs)

    return wrapper


def unit_page(permission: str) -> Callable[[View], View]:
    """For a console page about the unit of the URL value ``unit``: the view gets the
    :class:`UnitPage` as its first argument and only when the viewer holds
    ``permission`` there (:func:`open_unit`)."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(unit: str, **kwargs: Any) -> Response:
            viewer = current_viewer()
            if isinstance(viewer, Response):
                return viewer
            return view(open_unit(viewer, unit, permission), **kwargs)

        return wrapper

    return decorate
