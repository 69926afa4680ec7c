"""The administration console (blueprint ``console`` under ``/admin``, issue 14):
server-rendered pages for a company's main users and anyone holding administration
rights in a unit, on the same services as the administration API.

Building blocks for page modules (read these before adding a page):

* :mod:`idp.console.guard`: :func:`~idp.console.guard.unit_page` (authentication,
  ``idp.rights.require``, 404/403, the page's context and Post/Redirect/Get state) and
  :func:`~idp.console.guard.console_page` for pages about no unit;
* :mod:`idp.console.nav`: :func:`~idp.console.nav.register` a unit navigation entry
  from the page's own module;
* ``templates/console/base.html``: the layout (skip link, navigation, unit switcher,
  notice and error summary), and ``templates/console/_macros.html`` (``csrf_field``,
  ``error_summary``, ``field_error``).

A page module registers its routes on :data:`idp.console.blueprint.bp` and is
imported in :func:`setup_console` (one line each).
"""

from __future__ import annotations

from flask import Flask


def setup_console(app: Flask) -> None:
    """Register the ``console`` blueprint with every page module's routes."""
    from idp.console import (  # noqa: F401  (routes register on bp)
        access,
        accesses,
        home,
        structure,
        views_audit,  # a unit's integrations and policies: views_*
        views_domains,
        views_operator,
        views_operator_rights,
        views_policies,
        views_provisioning,
        views_purchases,
        views_sso,
        views_webhooks,
    )
    from idp.console.blueprint import bp

    app.register_blueprint(bp)
