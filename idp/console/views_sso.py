"""The console's SSO connectors (``/admin/units/<unit>/sso``, ``connectors.manage``):
the unit's upstream sign-ins, a guided set-up for Google Workspace, Microsoft Entra
ID, Okta and any OpenID provider that shows the redirect URI to register before the
connector exists, and a *connection test* that makes a real round trip.

The test (:func:`idp.federation.flow.start_test`): the administrator's browser goes
through the upstream's sign-in (a new sign-in is asked for) and back to the
connector's own callback URL; the answer is validated exactly as for a sign-in,
and the page then shows the claims received (or why they were refused). It never
signs anybody in, creates, links or changes an account, and its outcome is shown
only to the administrator who started it (for 10 minutes). A connector can be
tested while disabled, before employees use it.

SAML connectors are listed with the SP metadata and ACS URLs to register; adding
one (it needs the IdP's metadata) stays with ``idp connectors add --kind saml``."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, abort, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from connectors import ConfigurationError, ConnectorError
from idp.console import nav
from idp.console.accesses import clean
from idp.console.blueprint import bp
from idp.console.guard import UnitPage, unit_page
from idp.crypto.primitives import MasterKeyError
from idp.federation import admin, flow
from idp.federation.registry import callback_url, urls
from idp.store import connectors_repo
from idp.store.models import Connector
from idp.web.redirects import redirect

PERMISSION = "connectors.manage"
GUIDED = ("google", "microsoft", "okta", "oidc")
ID_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_FIELD = 500
MAX_SECRET = 2000

nav.register("sso", _l("SSO connectors"), "console.sso", PERMISSION, order=50)


def kind_names() -> dict[str, str]:
    return {
        "google": _("Google Workspace"),
        "microsoft": _("Microsoft Entra ID"),
        "okta": _("Okta"),
        "oidc": _("Other OpenID Connect provider"),
        "saml": _("SAML 2.0"),
    }


def _connector_of(page: UnitPage, connector_id: str) -> Connector:
    """The unit's own connector; 404 for anything else."""
    row = connectors_repo.get(connector_id) if ID_RE.match(connector_id) else None
    if row is None or row.unit_id != page.unit.id:
        abort(404)
    return row


def _describe(row: Connector) -> dict[str, Any]:
    data = admin.describe(row)
    data["kind_name"] = kind_names().get(row.kind, row.kind)
    return data


@bp.get("/units/<unit>/sso")
@unit_page(PERMISSION)
def sso(page: UnitPage) -> Response:
    """The unit's connectors and the choice of a new one."""
    rows = [_describe(r) for r in connectors_repo.list_all(page.unit.id)]
    return page.render(
        "console/sso.html",
        current="sso",
        connectors=rows,
        kinds=[(k, kind_names()[k]) for k in GUIDED],
    )


def _split(text: str) -> list[str]:
    return [p for p in re.split(r"[\s,;]+", text.strip()) if p][:20]


@bp.get("/units/<unit>/sso/new/<kind>")
@unit_page(PERMISSION)
def sso_new(page: UnitPage, kind: str) -> Response:
    """The guided set-up of a ``kind`` connector: the redirect URI to register at
    the provider comes first (its id is chosen now), then the fields it gives."""
    if kind not in GUIDED:
        abort(404)
    connector_id = request.args.get("id", "")
    if not ID_RE.match(connector_id) or connectors_repo.id_used(connector_id):
        connector_id = connectors_repo.new_connector_id()
    return page.render(
        "console/sso_new.html",
        current="sso",
        kind=kind,
        kind_name=kind_names()[kind],
        connector_id=connector_id,
        redirect_uri=callback_url(connector_id),
    )


def _create(page: UnitPage, kind: str, connector_id: str, form: Any) -> Connector:
    name = clean(form.get("name"), 200) or None
    issuer = clean(form.get("issuer"), MAX_FIELD) or None
    secret = clean(form.get("client_secret"), MAX_SECRET) or None
    client_id = clean(form.get("client_id"), MAX_FIELD)
    if not client_id:
        raise ConfigurationError(_("Enter the client ID the provider gave you."))
    if not secret:
        raise ConfigurationError(_("Enter the client secret the provider gave you."))
    if kind in ("okta", "oidc") and not issuer:
        raise ConfigurationError(_("Enter the issuer URL of the provider."))
    return admin.create(
        page.unit.id,
        kind,
        name=name,
        issuer=issuer if kind in ("okta", "oidc") else None,
        client_id=client_id,
        client_secret=secret,
        tenants=_split(form.get("tenants") or "") if kind == "microsoft" else (),
        hosted_domains=_split(form.get("hosted_domains") or "") if kind == "google" else (),
        actor=page.actor.audit_name(),
        connector_id=connector_id,
    )


@bp.post("/units/<unit>/sso/new/<kind>")
@unit_page(PERMISSION)
def sso_create(page: UnitPage, kind: str) -> Response:
    """Create the connector (validated by building it), then its page with the test."""
    if kind not in GUIDED:
        abort(404)
    form = request.form
    connector_id = form.get("connector_id", "")
    if not ID_RE.match(connector_id) or connectors_repo.id_used(connector_id):
        connector_id = connectors_repo.new_connector_id()
    keep = {
        k: (form.get(k) or "")[:MAX_FIELD]
        for k in ("name", "issuer", "client_id", "tenants", "hosted_domains")
    }
    try:
        row = _create(page, kind, connector_id, form)
    except ConfigurationError as exc:
        page.remember(errors={"client_id": str(exc)}, values=keep)
        return page.see_other("console.sso_new", kind=kind, id=connector_id)
    page.remember(
        notice=_(
            "The connector was added. Test it now: you will sign in at the "
            "provider and come back here."
        )
    )
    return page.see_other("console.sso_connector", connector=row.id)


@bp.get("/units/<unit>/sso/<connector>")
@unit_page(PERMISSION)
def sso_connector(page: UnitPage, connector: str) -> Response:
    """One connector: what to register at the provider, its state, the test button
    and, after a test (``?result=``), what came back."""
    row = _connector_of(page, connector)
    result = None
    token = request.args.get("result")
    if token:
        result = flow.test_result(token, row.id, page.viewer.account.id)
        if result is None:
            result = {"ok": False, "code": "expired", "detail": ""}
    return page.render(
        "console/sso_connector.html",
        current="sso",
        c=_describe(row),
        paste=urls(row),
        result=result,
    )


@bp.post("/units/<unit>/sso/<connector>/test")
@unit_page(PERMISSION)
def sso_test(page: UnitPage, connector: str) -> Response:
    """Start the connection test: 303 to the provider's sign-in."""
    row = _connector_of(page, connector)
    back = url_for("console.sso_connector", unit=page.unit.id, connector=row.id)
    try:
        target = flow.start_test(row, page.viewer.account.id, back)
    except (ConnectorError, ConfigurationError, MasterKeyError) as exc:
        page.remember(
            errors={"test": _("The provider could not be reached: %(why)s", why=str(exc)[:300])}
        )
        return page.see_other("console.sso_connector", connector=row.id)
    return redirect(target, code=303)


@bp.post("/units/<unit>/sso/<connector>/state")
@unit_page(PERMISSION)
def sso_state(page: UnitPage, connector: str) -> Response:
    """Enable or disable the connector (``enabled`` = 1 or 0)."""
    row = _connector_of(page, connector)
    enabled = request.form.get("enabled") == "1"
    admin.set_enabled(row, enabled, page.actor.audit_name())
    page.remember(
        notice=_("The connector is enabled.") if enabled else _("The connector is disabled.")
    )
    return page.see_other("console.sso_connector", connector=row.id)


@bp.post("/units/<unit>/sso/<connector>/remove")
@unit_page(PERMISSION)
def sso_remove(page: UnitPage, connector: str) -> Response:
    """Delete the connector with its linked identities; needs the confirmation box."""
    row = _connector_of(page, connector)
    if request.form.get("confirm") != "yes":
        page.remember(errors={"confirm": _("Tick the box to confirm the removal.")})
        return page.see_other("console.sso_connector", connector=row.id)
    name = row.name
    admin.remove(row, page.actor.audit_name())
    page.remember(notice=_("%(name)s was removed.", name=name))
    return page.see_other("console.sso")
