"""The console's webhooks (``/admin/units/<unit>/webhooks``, ``webhooks.manage``): the
unit's endpoints (add, shown secret once, enable and disable, remove), and per
endpoint its delivery log with the attempts and a "send again" button.

Every action goes through :mod:`idp.webhooks.endpoints`, which asks
:func:`idp.rights.require` itself and writes the audit; an endpoint or delivery of
another unit is a 404 here."""

from __future__ import annotations

from flask import Response, abort, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp.console import nav, time_cursor
from idp.console.accesses import clean, valid_id
from idp.console.blueprint import bp
from idp.console.guard import UnitPage, unit_page
from idp.store.models import WebhookEndpoint
from idp.webhooks import catalogue
from idp.webhooks import endpoints as hooks
from idp.webhooks.endpoints import EndpointRefused

PERMISSION = hooks.PERMISSION
PAGE = 50
MAX_ID = 40

nav.register("webhooks", _l("Webhooks"), "console.webhooks", PERMISSION, order=70)


def refusal(exc: EndpointRefused) -> str:
    """A refused endpoint in the reader's language."""
    if exc.field == "url":
        return _("Enter a public https:// address of the receiver (%(why)s).", why=exc.detail)
    if exc.field == "events":
        return _("Choose event types from the list (%(why)s).", why=exc.detail)
    return exc.detail


def _endpoint_of(page: UnitPage, webhook: str) -> WebhookEndpoint:
    row = hooks.in_unit(webhook, page.unit.id) if valid_id(webhook) else None
    if row is None:
        abort(404)
    return row


@bp.get("/units/<unit>/webhooks")
@unit_page(PERMISSION)
def webhooks(page: UnitPage) -> Response:
    """The unit's endpoints and the form for a new one (the secret of a new one is
    shown once, as the SCIM token is)."""
    rows = hooks.list_of(page.unit.id, page.actor, None, 200)
    events = sorted(catalogue.EVENTS)
    resp = page.render("console/webhooks.html", current="webhooks", endpoints=rows, events=events)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/units/<unit>/webhooks")
@unit_page(PERMISSION)
def webhook_create(page: UnitPage) -> Response:
    """Add an enabled endpoint (``url``, ``events`` ticked, none: every type)."""
    form = request.form
    url = clean(form.get("url"), 2000)
    description = clean(form.get("description"), 500)
    events = [e[:100] for e in form.getlist("events")][: hooks.MAX_EVENTS] or None
    if not url:
        page.remember(
            errors={"url": _("Enter the receiver's address.")}, values={"description": description}
        )
        return page.see_other("console.webhooks")
    try:
        made = hooks.create(page.unit.id, url, events, description, page.actor)
    except EndpointRefused as exc:
        page.remember(
            errors={exc.field if exc.field in ("url", "events") else "url": refusal(exc)},
            values={"url": url, "description": description},
        )
        return page.see_other("console.webhooks")
    page.remember(
        notice=_("The endpoint was added. Copy its signing secret now: it is shown only once."),
        values={"new_secret": made.secret},
    )
    return page.see_other("console.webhooks")


@bp.post("/units/<unit>/webhooks/<webhook>/state")
@unit_page(PERMISSION)
def webhook_state(page: UnitPage, webhook: str) -> Response:
    """Enable (clears the failure record) or disable the endpoint."""
    row = _endpoint_of(page, webhook)
    enabled = request.form.get("enabled") == "1"
    hooks.update(row, page.actor, enabled=enabled)
    page.remember(
        notice=_("The endpoint is enabled.") if enabled else _("The endpoint is disabled.")
    )
    return page.see_other("console.webhooks")


@bp.post("/units/<unit>/webhooks/<webhook>/remove")
@unit_page(PERMISSION)
def webhook_remove(page: UnitPage, webhook: str) -> Response:
    """Delete the endpoint with its deliveries; needs the confirmation box."""
    row = _endpoint_of(page, webhook)
    if request.form.get("confirm") != "yes":
        page.remember(errors={f"confirm-{row.id}": _("Tick the box to confirm the removal.")})
        return page.see_other("console.webhooks")
    hooks.delete(row, page.actor)
    page.remember(notice=_("The endpoint was removed."))
    return page.see_other("console.webhooks")


@bp.get("/units/<unit>/webhooks/<webhook>")
@unit_page(PERMISSION)
def webhook_deliveries(page: UnitPage, webhook: str) -> Response:
    """The endpoint's deliveries, newest first, with their newest attempts; paged."""
    row = _endpoint_of(page, webhook)
    found, logs = hooks.deliveries(
        row, page.actor, time_cursor.decode(request.args.get("after")), PAGE + 1
    )
    found, after = time_cursor.page_of(found, PAGE)
    return page.render(
        "console/webhook.html",
        current="webhooks",
        endpoint=row,
        deliveries=found,
        logs=logs,
        after=after,
    )


@bp.post("/units/<unit>/webhooks/<webhook>/deliveries/<delivery>/redeliver")
@unit_page(PERMISSION)
def webhook_redeliver(page: UnitPage, webhook: str, delivery: str) -> Response:
    """Queue the delivery again at once, with the same ``webhook-id``."""
    row = _endpoint_of(page, webhook)
    well_formed = len(delivery) <= MAX_ID and "\x00" not in delivery  # msg_<hex>
    found = hooks.delivery_of(delivery, row) if well_formed else None
    if found is None:
        abort(404)
    hooks.redeliver(found, page.actor)
    page.remember(notice=_("The delivery is sent again."))
    return page.see_other("console.webhook_deliveries", webhook=row.id)
