"""One person's access in the console: roles, permission groups, platform access,
notification settings, password status, the invitation, and the actions on it
(suspend, reactivate, send the access details, reset the password, remove) and
"log in as" with a reason. Services: :func:`idp.accounts.access_admin.update` and
:func:`~idp.accounts.access_admin.act`, :func:`idp.interaction.impersonation.start`
(which decides who may act as whom and shows its banner)."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from idp.accounts import access_admin, invites, notifications
from idp.console import messages
from idp.console.accesses import (
    ROLE_LABELS,
    STATUS_LABELS,
    clean,
    role_label,
    valid_id,
)
from idp.console.blueprint import bp
from idp.console.guard import UnitPage, unit_page
from idp.interaction import impersonation
from idp.rights import ImpersonationRefused, NotPermitted
from idp.store.models import Access
from idp.units import registry as units
from idp.web.redirects import redirect

ACTIONS: dict[str, Any] = {
    "suspend": _l("Suspended."),
    "reactivate": _l("Reactivated."),
    "resend": _l("The access details were sent."),
    "reset_password": _l("A new password was sent to the person."),
    "remove": _l("The access was removed."),
}
PASSWORD_LABELS: dict[str, Any] = {
    "initial": _l("Generated password sent, not changed yet"),
    "reset_by_staff": _l("Reset by an administrator, not changed yet"),
    "set_by_user": _l("Set by the person"),
}
EVENT_LABELS: dict[str, Any] = {
    "invitation.accepted": _l("A person invited to the unit accepted the invitation."),
    "approval.requested": _l("An order waits for approval."),
    "approval.decided": _l("An order was approved or rejected."),
    "order.placed": _l("An order was placed on the unit's account."),
    "order.shipped": _l("An order was shipped or delivered."),
    "invoice.issued": _l("An invoice was issued to the unit."),
    "credit_note.issued": _l("A credit note was issued to the unit."),
    "budget.alert": _l("A budget reached its alert threshold or was exceeded."),
}
MAX_REASON = 500


def _row(page: UnitPage, access_id: str) -> Access:
    """The access ``access_id`` of this unit; 404 otherwise."""
    if not valid_id(access_id):
        abort(404)
    try:
        return access_admin.get(page.unit.id, access_id)
    except access_admin.Refused:
        abort(404)


@bp.get("/units/<unit>/accesses/<access_id>")
@unit_page("users.read")
def access(page: UnitPage, access_id: str) -> Response:
    """The access: who, status, roles and groups, notifications, password status,
    the invitation, and the forms that change them (for ``users.manage``)."""
    row = _row(page, access_id)
    shown = access_admin.describe(row)
    return page.render(
        "console/access.html", current="accesses", access=shown, row=row,
        statuses=STATUS_LABELS, role_label=role_label, base_roles=tuple(ROLE_LABELS),
        groups=units.group_names(page.unit), events=list(notifications.EVENTS),
        event_labels=EVENT_LABELS, password_labels=PASSWORD_LABELS,
        invitation=invites.status(row.id), actions=ACTIONS,
    )


def _back(page: UnitPage, access_id: str, anchor: str | None = None) -> Response:
    return page.see_other("console.access", access_id=access_id, anchor=anchor)


@bp.post("/units/<unit>/accesses/<access_id>/settings")
@unit_page("users.manage")
def settings(page: UnitPage, access_id: str) -> Response:
    """Save roles, permission groups, platform access and notifications (``events``
    ticked, or ``default_events`` for the roles' defaults)."""
    row = _row(page, access_id)
    form = request.form
    group_names = set(units.group_names(page.unit))
    roles = [r for r in form.getlist("roles") if r in ROLE_LABELS]
    groups = [g for g in form.getlist("groups") if g in group_names]
    by_default = form.get("default_events") == "yes"
    events = None if by_default else [e for e in form.getlist("events") if e in EVENT_LABELS]
    try:
        changed = access_admin.update(
            page.actor, row, roles=roles, groups=groups,
            platform_access=form.get("platform_access") == "yes",
            events=events, reset_events=by_default,
        )
    except access_admin.Refused as exc:
        field = "roles" if exc.field in (None, "roles", "permission_groups") else "events"
        page.remember(errors={field: messages.text(exc.code)})
        return _back(page, access_id, "settings")
    page.remember(notice=gettext("Saved.") if changed else gettext("Nothing was changed."))
    return _back(page, access_id)


@bp.post("/units/<unit>/accesses/<access_id>/action")
@unit_page("users.manage")
def action(page: UnitPage, access_id: str) -> Response:
    """One action (``action``: suspend, reactivate, resend, reset_password, remove;
    remove needs the ``confirm`` box) on the access; the list after a removal."""
    row = _row(page, access_id)
    name = request.form.get("action", "")
    if name not in ACTIONS:
        abort(400)
    if name == "remove" and request.form.get("confirm") != "yes":
        page.remember(errors={"confirm-remove": messages.text("confirm")})
        return _back(page, access_id, "remove")
    outcome = access_admin.act(page.actor, name, row)
    if outcome.outcome == "refused":
        page.remember(errors={"actions": messages.text(outcome.code)})
        return _back(page, access_id, "actions")
    if outcome.outcome == "unchanged":
        page.remember(notice=gettext("Nothing was changed."))
    else:
        page.remember(notice=str(ACTIONS[name]))
    if name == "remove" and outcome.outcome == "done":
        return page.see_other("console.accesses")
    return _back(page, access_id)


@bp.post("/units/<unit>/accesses/<access_id>/impersonate")
@unit_page("impersonate")
def impersonate(page: UnitPage, access_id: str) -> Response:
    """"Log in as": act as the person for a while, with a required ``reason``
    (:func:`idp.interaction.impersonation.start`: audited, the person is told, the
    banner shows on every page). 303 to the person's dashboard."""
    reason = clean(request.form.get("reason"), MAX_REASON + 1)
    try:
        started = impersonation.start(page.actor, page.unit.id, access_id, reason)
    except ImpersonationRefused as exc:
        page.remember(errors={"reason": messages.text(exc.code)})
        return _back(page, access_id, "impersonate")
    except NotPermitted:
        abort(404)
    except impersonation.Refused as exc:
        if exc.code == "not_found":
            abort(404)
        page.remember(errors={"reason": messages.text(exc.code)}, values={"reason": reason})
        return _back(page, access_id, "impersonate")
    return redirect(started.redirect_to, code=303)
